"""The OAuth2 endpoints as a Django view.

In ``urls.py``::

    from authmw_django.endpoints import oauth_endpoints

    urlpatterns = [..., *oauth_endpoints()]

The view only translates: a Django request becomes authmw's neutral
:class:`~authmw.oauth2.HttpRequest`, and the neutral response a Django
``HttpResponse``. Every decision is made by :class:`~authmw.oauth2.AuthEndpoints`.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from authmw.authenticator import Authenticator
from authmw.oauth2 import AuthEndpoints
from authmw.oauth2 import HttpRequest as NeutralRequest
from authmw.oauth2 import HttpResponse as NeutralResponse
from authmw.oauth2._http import MAX_BODY
from authmw_django.conf import get_authenticator

__all__ = ["oauth_endpoints", "oauth_view"]

_endpoints: dict[int, AuthEndpoints] = {}


def _for(auth: Authenticator) -> AuthEndpoints:
    # One AuthEndpoints per authenticator: it holds the login throttle's counters.
    endpoints = _endpoints.get(id(auth))
    if endpoints is None or endpoints.authenticator is not auth:
        endpoints = _endpoints[id(auth)] = AuthEndpoints(auth)
    return endpoints


@csrf_exempt  # type: ignore[untyped-decorator]  # client credentials, not a session cookie
def oauth_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Answer ``/oauth/token``, ``/oauth/revoke`` and ``/oauth/introspect``."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    body = request.body if 0 <= length <= MAX_BODY else None
    neutral = NeutralRequest(
        method=(request.method or "GET").upper(),
        path=request.path_info,
        query=request.META.get("QUERY_STRING", ""),
        headers=tuple((name.lower(), value) for name, value in request.headers.items()),
        body=body or b"",
        peer=request.META.get("REMOTE_ADDR"),
    )
    endpoints = _for(get_authenticator())
    if body is None:
        answer = NeutralResponse.json(
            413, {"error": "invalid_request", "error_description": "The request body is too large."}
        )
    else:
        answer = endpoints.handle(neutral)
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response


def oauth_endpoints() -> list[URLPattern]:
    """URL patterns for the three endpoints, at the paths of authmw's contract."""
    return [
        path("oauth/token", oauth_view),
        path("oauth/revoke", oauth_view),
        path("oauth/introspect", oauth_view),
    ]
