#!/usr/bin/env bash
# Use case: configuration and schema introspection inside the container: diffsettings (settings changed from defaults), inspectdb (models from the live schema), showmigrations --plan.
# Source: Django docs: django-admin and manage.py — diffsettings, inspectdb, showmigrations
. "$(dirname "$0")/../lib.sh"
manage diffsettings 2>&1 | grep -q "ALLOWED_HOSTS = \['127.0.0.1', 'localhost'\]" || fail "diffsettings lacks ALLOWED_HOSTS"
manage inspectdb items_item 2>&1 | grep -q 'class ItemsItem(models.Model)' || fail "inspectdb did not describe items_item"
manage showmigrations --plan 2>&1 | grep -q '\[X\]  items.0001_initial' || fail "showmigrations --plan lacks items.0001_initial"
