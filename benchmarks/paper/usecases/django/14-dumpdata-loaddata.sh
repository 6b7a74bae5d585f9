#!/usr/bin/env bash
# Use case: fixture backup and restore inside the container: dumpdata items (JSON), loaddata of the same fixture, and an exported item deleted then restored by loaddata.
# Source: Django docs: django-admin and manage.py — dumpdata, loaddata; Providing initial data with fixtures
. "$(dirname "$0")/../lib.sh"
id=$(http_get -X POST -d '{"name":"uc14-fixture"}' "$BASE/api/items" | jq -r .id)
[ -n "$id" ] || fail "cannot create an item"
manage dumpdata items.item --indent 2 -o /tmp/uc14.json >/dev/null 2>&1 || fail "dumpdata failed"
n=$(dexec python3 -c 'import json; print(len(json.load(open("/tmp/uc14.json"))))') || fail "fixture not JSON"
[ "$n" -ge 1 ] || fail "fixture empty"
manage shell -c "from items.models import Item; Item.objects.filter(pk=$id).delete()" >/dev/null 2>&1 || fail "delete via shell failed"
expect_status 404 "$BASE/api/items/$id"
out=$(manage loaddata /tmp/uc14.json 2>&1) || fail "loaddata failed: $(echo $out | tail -c 200)"
echo "$out" | grep -q "Installed $n object" || fail "loaddata: $out"
[ "$(http_get "$BASE/api/items/$id" | jq -r .name)" = uc14-fixture ] || fail "item not restored by loaddata"
dexec rm -f /tmp/uc14.json
manage dumpdata auth.user --indent 0 2>/dev/null | grep -q '"username": "admin"' || fail "dumpdata auth.user lacks admin"
