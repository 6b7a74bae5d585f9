#!/usr/bin/env bash
# Use case: ORM from the shell inside the container: manage.py shell -c with a count, a filter, an aggregate and a transaction that is rolled back.
# Source: Django docs: django-admin and manage.py — shell -c; Database transactions — atomic()
. "$(dirname "$0")/../lib.sh"
out=$(manage shell -c '
from django.db import transaction
from django.db.models import Count, Max
from items.models import Item
n = Item.objects.count()
try:
    with transaction.atomic():
        Item.objects.create(name="uc15-rolled-back")
        raise RuntimeError("rollback")
except RuntimeError:
    pass
assert Item.objects.filter(name="uc15-rolled-back").count() == 0
assert Item.objects.count() == n
print("ok", n, Item.objects.aggregate(m=Max("id"))["m"] is not None)
' 2>&1) || fail "shell -c failed: $(echo $out | tail -c 300)"
echo "$out" | grep -q '^ok [0-9]* True' || fail "unexpected shell output: $out"
