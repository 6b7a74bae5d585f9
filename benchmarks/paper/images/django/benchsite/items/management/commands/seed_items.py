from django.core.management.base import BaseCommand

from items.models import Item


class Command(BaseCommand):
    help = "Create N sample items (idempotent: tops the table up to N)."

    def add_arguments(self, parser):
        parser.add_argument("n", type=int)

    def handle(self, *args, n, **options):
        have = Item.objects.count()
        Item.objects.bulk_create(
            Item(name=f"item {i}", description=f"sample item number {i}") for i in range(have + 1, n + 1)
        )
        self.stdout.write(f"{Item.objects.count()} items")
