"""authmw: authentication for web APIs.

One framework-neutral core turns the credential a request carries (an API key,
a user token, an OAuth2 token) into a :class:`Principal`; thin plugins for
Starlette/FastAPI, Flask and Django put it on ``request.state.principal`` and
enforce one rule table through the same decorators everywhere.
"""

from authmw.authenticator import Authenticator
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
)
from authmw.keys import ApiKeys, IssuedKey
from authmw.passwords import PasswordHasher, WeakPassword
from authmw.policy import Policy, Role
from authmw.principal import KINDS, Kind, Principal
from authmw.store import ApiKey, Conflict, NotFound, Store, StoreError, User
from authmw.users import Users

__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "ApiKey",
    "ApiKeys",
    "AuthError",
    "Authenticator",
    "Conflict",
    "Credential",
    "Forbidden",
    "InsufficientRole",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "IssuedKey",
    "Kind",
    "MissingCredentials",
    "NotFound",
    "PasswordHasher",
    "Policy",
    "Principal",
    "RequestAuth",
    "Role",
    "ServiceUnavailable",
    "Settings",
    "Store",
    "StoreError",
    "User",
    "Users",
    "WeakPassword",
    "__version__",
    "current",
]
