#!/usr/bin/env bash
# Use case: admin workflow: log in as admin, add an Item through the admin add form, find it with the changelist search, edit it, delete it through the confirmation page.
# Source: Django docs: The Django admin site (ModelAdmin add/change/delete views, search_fields)
. "$(dirname "$0")/../lib.sh"
jar=$(mktemp); trap 'rm -f "$jar"' EXIT
r=$(django_login "$jar" admin admin); case $r in "302 "*/admin/) ;; *) fail "admin login gave '$r'";; esac
name=uc10-$(date +%s%N)
tok=$(csrf_from "$jar" "$BASE/admin/items/item/add/")
[ -n "$tok" ] || fail "no add form"
r=$(curl -sS --max-time 20 -c "$jar" -b "$jar" -o /dev/null -w '%{http_code} %{redirect_url}' \
    --data-urlencode "csrfmiddlewaretoken=$tok" --data-urlencode "name=$name" --data-urlencode "description=added in the admin" \
    --data-urlencode "_save=Save" "$BASE/admin/items/item/add/")
case $r in "302 "*) ;; *) fail "add form POST gave '$r'";; esac
id=$(http_get "$BASE/api/items" | jq -r --arg n "$name" '.items[] | select(.name == $n) | .id')
[ -n "$id" ] || fail "item added in the admin not found in /api/items"
curl -sS --max-time 20 -b "$jar" "$BASE/admin/items/item/?q=$name" | grep -q "$name" || fail "changelist search does not find the item"
tok=$(csrf_from "$jar" "$BASE/admin/items/item/$id/change/")
r=$(curl -sS --max-time 20 -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' --data-urlencode "csrfmiddlewaretoken=$tok" \
    --data-urlencode "name=$name-edited" --data-urlencode "description=edited" --data-urlencode "_save=Save" "$BASE/admin/items/item/$id/change/")
[ "$r" = 302 ] || fail "change form POST gave $r"
[ "$(http_get "$BASE/api/items/$id" | jq -r .name)" = "$name-edited" ] || fail "edit not saved"
tok=$(csrf_from "$jar" "$BASE/admin/items/item/$id/delete/")
r=$(curl -sS --max-time 20 -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' --data-urlencode "csrfmiddlewaretoken=$tok" \
    --data-urlencode "post=yes" "$BASE/admin/items/item/$id/delete/")
[ "$r" = 302 ] || fail "delete confirmation POST gave $r"
expect_status 404 "$BASE/api/items/$id"
