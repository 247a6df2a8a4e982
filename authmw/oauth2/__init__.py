"""The OAuth2 authorization server endpoints, as one framework-neutral app.

``AuthEndpoints(authenticator)`` serves ``POST /oauth/token`` (password,
refresh_token and client_credentials grants), ``POST /oauth/revoke`` (RFC 7009)
and ``POST /oauth/introspect`` (RFC 7662). Mount it in any framework with
:meth:`AuthEndpoints.wsgi` or :meth:`AuthEndpoints.asgi`.
"""

from authmw.oauth2._http import HttpRequest, HttpResponse
from authmw.oauth2.endpoints import AuthEndpoints

__all__ = ["AuthEndpoints", "HttpRequest", "HttpResponse"]
