from django.contrib import admin
from django.urls import path

from items import views

urlpatterns = [
    path("", views.item_list, name="item-list"),
    path("api/items", views.api_items, name="api-items"),
    path("api/items/<int:pk>", views.api_item, name="api-item"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
