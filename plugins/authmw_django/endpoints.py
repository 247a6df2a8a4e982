"""authmw's OAuth2 endpoints and pages as Django views.

In ``urls.py``::

    from authmw_django.endpoints import oauth_endpoints

    urlpatterns = [..., *oauth_endpoints(platform_name="Acme")]

That routes ``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect``,
``/oauth/authorize`` (login and consent pages), ``/oauth/consents`` and
``/.well-known/oauth-authorization-server``. The keyword arguments are those of
:class:`~authmw.oauth2.AuthEndpoints` (``platform_name``, ``scope_descriptions``,
``templates``, ``issuer``...).

The view only translates: a Django request becomes authmw's neutral
:class:`~authmw.oauth2.HttpRequest`, and the neutral response a Django
``HttpResponse``. Every decision is made by ``AuthEndpoints``, exactly as under
Flask or FastAPI. The views are exempt from Django's CSRF middleware: the token
endpoint authenticates clients, not cookies, and the login and consent forms
carry authmw's own CSRF token. They are open under ``REQUIRE_AUTH`` too, without
a ``PUBLIC_PATHS`` entry: a client comes to them to get a credential, and
``/oauth/consents`` checks the user's token itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from authmw.authenticator import Authenticator
from authmw.oauth2 import AuthEndpoints
from authmw.oauth2 import HttpRequest as NeutralRequest
from authmw.oauth2._http import MAX_BODY, TOO_LARGE, content_of
from authmw_django.conf import get_authenticator
from authmw_django.middleware import PUBLIC_VIEW

__all__ = ["oauth_endpoints", "oauth_view"]

View = Callable[..., HttpResponse]


def oauth_view(**options: Any) -> View:
    """Return one Django view serving every authmw OAuth2 path, built with ``options``."""
    built: dict[int, AuthEndpoints] = {}

    def endpoints_for(auth: Authenticator) -> AuthEndpoints:
        # One AuthEndpoints per authenticator: it holds the login throttle's counters.
        endpoints = built.get(id(auth))
        if endpoints is None or endpoints.authenticator is not auth:
            endpoints = built[id(auth)] = AuthEndpoints(auth, **options)
        return endpoints

    @csrf_exempt  # type: ignore[untyped-decorator]  # see the module docstring
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            answer = TOO_LARGE
        else:
            answer = endpoints_for(get_authenticator()).handle(
                NeutralRequest(
                    method=(request.method or "GET").upper(),
                    path=request.path_info,
                    query=request.META.get("QUERY_STRING", ""),
                    headers=tuple((k.lower(), v) for k, v in request.headers.items()),
                    body=request.body,
                    peer=request.META.get("REMOTE_ADDR"),
                    scheme="https" if request.is_secure() else "http",
                )
            )
        response = HttpResponse(content_of(request.method or "GET", answer), status=answer.status)
        response["Content-Length"] = str(len(answer.body))
        for name, value in answer.headers:
            if name.lower() == "set-cookie":
                # Django keeps cookies apart from headers: a response may set several.
                response.cookies.load(value)
            else:
                response[name] = value
        return response

    # Open under REQUIRE_AUTH (see the module docstring).
    setattr(view, PUBLIC_VIEW, True)
    return view  # type: ignore[no-any-return]


def oauth_endpoints(**options: Any) -> list[URLPattern]:
    """URL patterns for every OAuth2 path of authmw's contract, served by one view."""
    view = oauth_view(**options)
    return [
        path("oauth/token", view),
        path("oauth/revoke", view),
        path("oauth/introspect", view),
        path("oauth/authorize", view),
        path("oauth/consents", view),
        path("oauth/consents/<str:client_id>", view),
        path(".well-known/oauth-authorization-server", view),
    ]
