"""The demo API's routes, as in ``examples/fastapi_app``.

The OAuth2 endpoints are not routes here: ``app.DemoHandler`` serves them in
front of Django, with the demo's platform name and scope descriptions.
"""

from __future__ import annotations

from django.urls import path

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
]

handler404 = views.not_found
