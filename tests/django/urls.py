"""URLs of the Django tests: ``/<variant>/<route>`` for every variant of :mod:`.views`."""

from __future__ import annotations

from typing import Any

from django.urls import path

from authmw_django.endpoints import oauth_endpoints
from tests.django import extra_views
from tests.django.views import ROUTES, VARIANTS

urlpatterns: list[Any] = [
    path(f"{variant}/{ROUTES[name]}", view)
    for variant, views in VARIANTS.items()
    for name, view in views.items()
]
urlpatterns += extra_views.urlpatterns
urlpatterns += oauth_endpoints()
