import json

from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt

from .models import Item

MAX_PAGE = 100


def item_list(request):
    items = Item.objects.order_by("-id")[:MAX_PAGE]
    return render(request, "items/list.html", {"items": items, "count": Item.objects.count()})


@csrf_exempt
def api_items(request):
    """GET: the items as JSON (newest first, at most 100); POST: create one
    from a JSON body {"name": ..., "description": ...}."""
    if request.method == "GET":
        items = Item.objects.order_by("-id")[:MAX_PAGE]
        return JsonResponse({"count": Item.objects.count(), "items": [i.as_dict() for i in items]})
    if request.method == "POST":
        try:
            data = json.loads(request.body or b"{}")
            name = str(data["name"])[:200]
        except (ValueError, KeyError, TypeError):
            return JsonResponse({"error": "expected a JSON object with a name"}, status=400)
        item = Item.objects.create(name=name, description=str(data.get("description", "")))
        return JsonResponse(item.as_dict(), status=201)
    return HttpResponseNotAllowed(["GET", "POST"])


def api_item(request, pk):
    return JsonResponse(get_object_or_404(Item, pk=pk).as_dict())


def healthz(request):
    return HttpResponse("ok\n", content_type="text/plain")
