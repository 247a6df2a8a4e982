"""authmw: authentication for web APIs.

One framework-neutral core turns the credential a request carries (an API key,
a user token, an OAuth2 token) into a :class:`Principal`; thin plugins for
Starlette/FastAPI, Flask and Django put it on ``request.state.principal`` and
enforce one rule table through the same decorators everywhere.
"""

from authmw.audit import Audit, AuditEvent
from authmw.authenticator import Authenticator
from authmw.clients import Clients, IssuedClient
from authmw.config import Settings
from authmw.context import RequestAuth, current
from authmw.credentials import Credential
from authmw.errors import (
    AuthError,
    Forbidden,
    InsufficientRole,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    ServiceUnavailable,
    TooManyRequests,
    Unverifiable,
)
from authmw.keys import ApiKeys, IssuedKey
from authmw.passwords import PasswordHasher, WeakPassword
from authmw.policy import Policy, Role
from authmw.principal import KINDS, Kind, Principal
from authmw.store import (
    ApiKey,
    AuthorizationCode,
    Client,
    Conflict,
    Consent,
    NotFound,
    RefreshToken,
    Revocation,
    Store,
    StoreError,
    User,
)
from authmw.throttle import LoginThrottle
from authmw.tokens import IssuedTokens, Tokens
from authmw.users import Users

__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "ApiKey",
    "ApiKeys",
    "Audit",
    "AuditEvent",
    "AuthError",
    "Authenticator",
    "AuthorizationCode",
    "Client",
    "Clients",
    "Conflict",
    "Consent",
    "Credential",
    "Forbidden",
    "InsufficientRole",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "IssuedClient",
    "IssuedKey",
    "IssuedTokens",
    "Kind",
    "LoginThrottle",
    "MissingCredentials",
    "NotFound",
    "PasswordHasher",
    "Policy",
    "Principal",
    "RefreshToken",
    "RequestAuth",
    "Revocation",
    "Role",
    "ServiceUnavailable",
    "Settings",
    "Store",
    "StoreError",
    "Tokens",
    "TooManyRequests",
    "Unverifiable",
    "User",
    "Users",
    "WeakPassword",
    "__version__",
    "current",
]
