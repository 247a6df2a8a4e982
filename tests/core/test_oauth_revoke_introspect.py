"""POST /oauth/revoke (RFC 7009) and POST /oauth/introspect (RFC 7662) over WSGI and ASGI."""

from __future__ import annotations

import time

import pytest

from authmw.errors import InvalidToken
from authmw.tokens import AccessClaims
from tests.conftest import PASSWORD, AuthenticatorFactory
from tests.core.oauth_support import Driver, Reply, World, build_world, form, make_driver, no_store

pytestmark = pytest.mark.anyio

TOKEN = "/oauth/token"
REVOKE = "/oauth/revoke"
INTROSPECT = "/oauth/introspect"
INACTIVE = b'{"active":false}'


@pytest.fixture
def world(make_authenticator: AuthenticatorFactory) -> World:
    return build_world(make_authenticator)


@pytest.fixture(params=["wsgi", "asgi"])
def driver(request: pytest.FixtureRequest, world: World) -> Driver:
    return make_driver(request.param, world)


@pytest.fixture
def wsgi(world: World) -> Driver:
    return make_driver("wsgi", world)


async def login(driver: Driver, world: World) -> dict[str, str]:
    reply = await driver.send(TOKEN, world.login_body())
    assert reply.status == 200
    tokens: dict[str, str] = reply.json()
    return tokens


async def revoke(driver: Driver, world: World, token: str, **extra: str) -> Reply:
    return await driver.send(REVOKE, form(token=token, **extra), headers=world.basic(world.web))


async def introspect(driver: Driver, world: World, token: str, *, own: bool = False) -> Reply:
    """Ask about ``token`` as the machine client (a resource server), or as the web app
    the logins' tokens are issued to (``own``), the one client a refresh token is live to."""
    client = world.web if own else world.machine
    return await driver.send(INTROSPECT, form(token=token), headers=world.basic(client))


def assert_revoked(reply: Reply) -> None:
    """RFC 7009 section 2.2: 200 and an empty body, whatever the token was."""
    assert reply.status == 200
    assert reply.body == b""


def assert_inactive(reply: Reply) -> None:
    """RFC 7662 section 2.2: exactly ``{"active": false}``, nothing about why."""
    assert reply.status == 200
    assert reply.body == INACTIVE
    assert no_store(reply)


# -- revocation --------------------------------------------------------------------------


async def test_revoking_an_access_token(driver: Driver, world: World) -> None:
    tokens = await login(driver, world)
    assert world.principal(tokens["access_token"]) is not None
    assert_revoked(await revoke(driver, world, tokens["access_token"]))
    with pytest.raises(InvalidToken):
        world.principal(tokens["access_token"])
    assert_inactive(await introspect(driver, world, tokens["access_token"]))
    # The refresh token was not the one revoked: it still rotates.
    refreshed = await driver.send(
        TOKEN,
        form(grant_type="refresh_token", refresh_token=tokens["refresh_token"]),
        headers=world.basic(world.web),
    )
    assert refreshed.status == 200


async def test_revoking_a_refresh_token_kills_its_family(driver: Driver, world: World) -> None:
    tokens = await login(driver, world)
    assert_revoked(await revoke(driver, world, tokens["refresh_token"]))
    with pytest.raises(InvalidToken):
        world.principal(tokens["access_token"])
    refreshed = await driver.send(
        TOKEN,
        form(grant_type="refresh_token", refresh_token=tokens["refresh_token"]),
        headers=world.basic(world.web),
    )
    assert (refreshed.status, refreshed.error) == (400, "invalid_grant")
    assert_inactive(await introspect(driver, world, tokens["refresh_token"], own=True))


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "amt_" + "x" * 80,
        "amr_" + "a" * 12 + "_" + "b" * 38,
        "amcs_" + "a" * 12 + "_" + "b" * 38,
        "\u00e9\u00e9",
    ],
)
async def test_revoking_an_unknown_or_garbage_token_is_200(
    driver: Driver, world: World, token: str
) -> None:
    assert_revoked(await revoke(driver, world, token))


@pytest.mark.parametrize("hint", ["refresh_token", "access_token", "banana", ""])
async def test_a_wrong_or_unknown_hint_is_ignored(wsgi: Driver, world: World, hint: str) -> None:
    tokens = await login(wsgi, world)
    # The access token, hinted as anything: it is revoked all the same.
    assert_revoked(await revoke(wsgi, world, tokens["access_token"], token_type_hint=hint))
    with pytest.raises(InvalidToken):
        world.principal(tokens["access_token"])
    wrong = "access_token" if hint == "refresh_token" else hint
    assert_revoked(await revoke(wsgi, world, tokens["refresh_token"], token_type_hint=wrong))
    assert_inactive(await introspect(wsgi, world, tokens["refresh_token"], own=True))


async def test_revoking_without_a_token_is_invalid_request(driver: Driver, world: World) -> None:
    reply = await driver.send(REVOKE, form(), headers=world.basic(world.web))
    assert (reply.status, reply.error) == (400, "invalid_request")
    reply = await driver.send(REVOKE, form(token=""), headers=world.basic(world.web))
    assert (reply.status, reply.error) == (400, "invalid_request")


async def test_revoking_needs_client_authentication(driver: Driver, world: World) -> None:
    tokens = await login(driver, world)
    unauthenticated = await driver.send(REVOKE, form(token=tokens["access_token"]))
    assert (unauthenticated.status, unauthenticated.error) == (401, "invalid_client")
    assert unauthenticated.header("www-authenticate") == 'Basic realm="api"'
    assert world.web.secret is not None
    wrong = await driver.send(
        REVOKE,
        form(token=tokens["access_token"], client_id=world.web.client.id, client_secret="nope"),
    )
    assert (wrong.status, wrong.error) == (401, "invalid_client")
    assert world.principal(tokens["access_token"]) is not None


async def test_a_client_cannot_revoke_another_clients_tokens(driver: Driver, world: World) -> None:
    tokens = await login(driver, world)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        # RFC 7009 section 2.2: 200 all the same, so the caller learns nothing.
        reply = await driver.send(REVOKE, form(token=token), headers=world.basic(world.third))
        assert_revoked(reply)
    assert world.principal(tokens["access_token"]) is not None
    assert "token.revoked" not in world.event_names()


async def test_revoking_with_parameters_in_the_query_is_refused(wsgi: Driver, world: World) -> None:
    tokens = await login(wsgi, world)
    reply = await wsgi.send(
        REVOKE,
        b"",
        query=form(token=tokens["access_token"]).decode(),
        headers=world.basic(world.web),
    )
    assert (reply.status, reply.error) == (400, "invalid_request")
    assert world.principal(tokens["access_token"]) is not None


# -- introspection -------------------------------------------------------------------------


async def test_introspecting_a_live_access_token(driver: Driver, world: World) -> None:
    tokens = await login(driver, world)
    reply = await introspect(driver, world, tokens["access_token"])
    assert reply.status == 200
    assert no_store(reply)
    claims = reply.json()
    assert claims["active"] is True
    assert type(claims["exp"]) is int
    assert type(claims["iat"]) is int
    assert claims["exp"] - claims["iat"] == world.auth.settings.access_token_ttl
    assert claims["scope"] == "appointments:read appointments:write reports:read"
    assert claims["client_id"] == world.web.client.id
    assert claims["sub"] == "manager"
    assert claims["token_type"] == "Bearer"


async def test_a_refresh_token_is_live_only_to_its_own_client(wsgi: Driver, world: World) -> None:
    tokens = await login(wsgi, world)
    # Another client, even one a resource server uses, learns nothing of it.
    assert_inactive(await introspect(wsgi, world, tokens["refresh_token"]))
    claims = (await introspect(wsgi, world, tokens["refresh_token"], own=True)).json()
    assert claims["active"] is True
    assert claims["token_type"] == "refresh_token"
    assert claims["sub"] == "manager"
    assert claims["client_id"] == world.web.client.id
    assert type(claims["exp"]) is int
    assert type(claims["iat"]) is int


async def test_introspecting_a_client_token(wsgi: Driver, world: World) -> None:
    issued = await wsgi.send(
        TOKEN, form(grant_type="client_credentials"), headers=world.basic(world.machine)
    )
    claims = (await introspect(wsgi, world, issued.json()["access_token"])).json()
    assert claims["active"] is True
    assert claims["client_id"] == world.machine.client.id
    assert claims["scope"] == "reports:read"


async def test_introspecting_an_expired_token_is_inactive(driver: Driver, world: World) -> None:
    # An expired but validly signed token: a state only waiting makes, so minted directly.
    now = int(time.time())
    expired = world.auth.tokens.codec.encode(
        AccessClaims(
            token_id="expired1",
            kind="user",
            subject="manager",
            client_id=world.web.client.id,
            issued_at=now - 1000,
            expires_at=now - 100,
            scopes=frozenset({"reports:read"}),
            epoch=world.auth.users.get("manager").credential_epoch,
        )
    )
    assert_inactive(await introspect(driver, world, expired))


@pytest.mark.parametrize(
    "token", ["garbage", "amt_" + "x" * 80, "amr_" + "a" * 12 + "_" + "b" * 38, "\u00e9"]
)
async def test_introspecting_garbage_is_inactive(driver: Driver, world: World, token: str) -> None:
    assert_inactive(await introspect(driver, world, token))


async def test_introspecting_revoked_and_rotated_tokens_is_inactive(
    driver: Driver, world: World
) -> None:
    tokens = await login(driver, world)
    rotated = await driver.send(
        TOKEN,
        form(grant_type="refresh_token", refresh_token=tokens["refresh_token"]),
        headers=world.basic(world.web),
    )
    assert rotated.status == 200
    # The used refresh token is inactive; its successor is live.
    assert_inactive(await introspect(driver, world, tokens["refresh_token"], own=True))
    successor = rotated.json()
    assert (await introspect(driver, world, successor["refresh_token"], own=True)).json()["active"]
    assert_revoked(await revoke(driver, world, successor["access_token"]))
    assert_inactive(await introspect(driver, world, successor["access_token"]))


async def test_a_disabled_users_token_is_inactive(wsgi: Driver, world: World) -> None:
    tokens = await login(wsgi, world)
    world.auth.users.disable("manager")
    assert_inactive(await introspect(wsgi, world, tokens["access_token"]))
    assert_inactive(await introspect(wsgi, world, tokens["refresh_token"], own=True))


async def test_introspection_needs_a_client_secret(driver: Driver, world: World) -> None:
    tokens = await login(driver, world)
    token = tokens["access_token"]
    public_app = await driver.send(INTROSPECT, form(token=token, client_id=world.public.client.id))
    assert (public_app.status, public_app.error) == (401, "invalid_client")
    assert public_app.header("www-authenticate") == 'Basic realm="api"'
    nobody = await driver.send(INTROSPECT, form(token=token))
    assert (nobody.status, nobody.error) == (401, "invalid_client")
    confidential_id_only = await driver.send(
        INTROSPECT, form(token=token, client_id=world.web.client.id)
    )
    assert (confidential_id_only.status, confidential_id_only.error) == (401, "invalid_client")
    for reply in (public_app, nobody, confidential_id_only):
        assert b"active" not in reply.body


async def test_introspecting_without_a_token_is_invalid_request(wsgi: Driver, world: World) -> None:
    reply = await wsgi.send(INTROSPECT, form(), headers=world.basic(world.machine))
    assert (reply.status, reply.error) == (400, "invalid_request")


async def test_revoke_and_introspect_are_post_only(driver: Driver, world: World) -> None:
    for path in (REVOKE, INTROSPECT):
        reply = await driver.send(path, method="GET", content_type=None)
        assert reply.status == 405
        assert reply.header("allow") == "POST"


async def test_a_password_grant_body_at_revoke_does_not_log_in(wsgi: Driver, world: World) -> None:
    body = form(grant_type="password", username="manager", password=PASSWORD, token="x")
    reply = await wsgi.send(REVOKE, body, headers=world.basic(world.web))
    assert_revoked(reply)
    assert not [n for n in world.event_names() if n.startswith("login.")]
