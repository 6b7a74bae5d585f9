#!/usr/bin/env bash
# Use case: migration state inside the container: migrate --plan (nothing planned), showmigrations (items 0001 applied), sqlmigrate items 0001 (the CREATE TABLE).
# Source: Django docs: django-admin and manage.py — migrate --plan, showmigrations, sqlmigrate
. "$(dirname "$0")/../lib.sh"
manage migrate --plan 2>&1 | grep -q 'No planned migration operations' || fail "migrate --plan: unapplied migrations"
manage showmigrations items 2>&1 | grep -q '\[X\] 0001_initial' || fail "showmigrations does not show items 0001 applied"
manage sqlmigrate items 0001 2>&1 | grep -q 'CREATE TABLE "items_item"' || fail "sqlmigrate lacks CREATE TABLE"
