"""The demo API's routes, as in ``examples/fastapi_app``, and authmw's OAuth2 endpoints."""

from __future__ import annotations

from django.urls import path

from authmw.demo import SCOPE_DESCRIPTIONS
from authmw_django.endpoints import oauth_endpoints

from . import views

urlpatterns = [
    path("health", views.health),
    path("me", views.me),
    path("catalog", views.catalog),
    path("reports", views.reports),
    path("admin/settings", views.update_settings),
    path("appointments", views.appointments),
    path("teams/<str:team>/usage", views.team_usage),
    path("account/password", views.change_password),
    *oauth_endpoints(platform_name="authmw demo", scope_descriptions=SCOPE_DESCRIPTIONS),
]

handler404 = views.not_found
