"""POST /oauth/token over real WSGI and ASGI: grants, request rules, client authentication.

RFC 6749 sections 2.3.1 (client authentication), 3.2 (the token endpoint),
4.3 (password), 4.4 (client credentials), 5.1 and 5.2 (responses) and 6 (refresh).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from authmw.errors import InvalidToken
from authmw.oauth2._http import MAX_BODY
from tests.conftest import PASSWORD, AuthenticatorFactory
from tests.core.oauth_support import (
    FORM,
    Driver,
    Reply,
    World,
    basic,
    build_world,
    form,
    make_driver,
    no_store,
)

pytestmark = pytest.mark.anyio

TOKEN = "/oauth/token"
MANAGER_SCOPE = "appointments:read appointments:write reports:read"


@pytest.fixture
def world(make_authenticator: AuthenticatorFactory) -> World:
    return build_world(make_authenticator)


@pytest.fixture(params=["wsgi", "asgi"])
def driver(request: pytest.FixtureRequest, world: World) -> Driver:
    """Both servers: the test runs once under WSGI and once under ASGI."""
    return make_driver(request.param, world)


@pytest.fixture
def wsgi(world: World) -> Driver:
    return make_driver("wsgi", world)


def assert_error(reply: Reply, status: int, error: str) -> None:
    """An RFC 6749 section 5.2 error: status, code, a description, never cached."""
    assert (reply.status, reply.error) == (status, error), reply.body
    assert isinstance(reply.json()["error_description"], str)
    assert reply.header("content-type") == "application/json"
    assert no_store(reply)
    assert "access_token" not in reply.json()


async def login(
    driver: Driver,
    world: World,
    username: str = "manager",
    password: str = PASSWORD,
    *,
    scope: str | None = None,
) -> Reply:
    return await driver.send(TOKEN, world.login_body(username, password, scope=scope))


# -- the password grant (RFC 6749 section 4.3) ----------------------------------------------


async def test_password_grant_issues_an_access_and_a_refresh_token(
    driver: Driver, world: World
) -> None:
    reply = await login(driver, world)
    assert reply.status == 200
    assert reply.header("content-type") == "application/json"
    assert reply.header("cache-control") == "no-store"
    assert reply.header("pragma") == "no-cache"
    body = reply.json()
    assert sorted(body) == ["access_token", "expires_in", "refresh_token", "scope", "token_type"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == world.auth.settings.access_token_ttl
    assert type(body["expires_in"]) is int
    assert body["scope"] == MANAGER_SCOPE
    assert body["refresh_token"].startswith("amr_")
    principal = world.principal(body["access_token"])
    assert principal is not None
    assert (principal.kind, principal.subject) == ("user", "manager")
    assert principal.client_id == world.web.client.id


async def test_password_grant_with_http_basic(driver: Driver, world: World) -> None:
    body = form(grant_type="password", username="employee", password=PASSWORD)
    reply = await driver.send(TOKEN, body, headers=world.basic(world.web))
    assert reply.status == 200
    assert reply.json()["scope"] == "appointments:read"


async def test_password_grant_asking_for_less_scope_gets_less(wsgi: Driver, world: World) -> None:
    reply = await login(wsgi, world, scope="reports:read")
    assert reply.status == 200
    assert reply.json()["scope"] == "reports:read"


async def test_password_grant_asking_beyond_the_users_roles_is_invalid_scope(
    wsgi: Driver, world: World
) -> None:
    assert_error(await login(wsgi, world, "employee", scope="admin"), 400, "invalid_scope")


@pytest.mark.parametrize("password", [PASSWORD, "a wrong password"], ids=["right", "wrong"])
async def test_a_third_party_app_may_not_use_the_password_grant_and_no_password_is_checked(
    driver: Driver, world: World, password: str
) -> None:
    # RFC 9700 section 2.4. Ten tries, twice the throttle's limit: were the
    # password looked at, the wrong ones would be counted and end in a 429.
    for _ in range(10):
        reply = await driver.send(TOKEN, world.login_body(password=password, client=world.third))
        assert_error(reply, 400, "unauthorized_client")
    assert not [n for n in world.event_names() if n.startswith("login.")]
    assert (await login(driver, world)).status == 200


async def test_a_machine_client_may_not_use_the_password_grant(
    driver: Driver, world: World
) -> None:
    reply = await driver.send(TOKEN, world.login_body(client=world.machine))
    assert_error(reply, 400, "unauthorized_client")
    assert not [n for n in world.event_names() if n.startswith("login.")]


async def test_wrong_password_unknown_user_and_disabled_user_look_the_same(
    driver: Driver, world: World
) -> None:
    world.auth.users.disable("admin")
    replies = [
        await login(driver, world, "manager", password="not the password"),
        await login(driver, world, "nobody-by-that-name"),
        await login(driver, world, "admin"),
    ]
    for reply in replies:
        assert_error(reply, 400, "invalid_grant")
    assert replies[0].headers == replies[1].headers == replies[2].headers
    assert replies[0].body == replies[1].body == replies[2].body


async def test_the_public_first_party_app_logs_in_with_its_id_alone(
    wsgi: Driver, world: World
) -> None:
    body = form(
        grant_type="password",
        username="manager",
        password=PASSWORD,
        client_id=world.public.client.id,
    )
    reply = await wsgi.send(TOKEN, body)
    assert reply.status == 200
    assert reply.json()["refresh_token"]


# -- the refresh_token grant (RFC 6749 section 6) -------------------------------------------


def refresh_body(world: World, token: str, **extra: str) -> bytes:
    return form(grant_type="refresh_token", refresh_token=token, **world.creds(world.web), **extra)


async def test_refresh_rotates_and_a_reuse_revokes_the_family(driver: Driver, world: World) -> None:
    first = (await login(driver, world)).json()
    second = await driver.send(TOKEN, refresh_body(world, first["refresh_token"]))
    assert second.status == 200
    assert no_store(second)
    successor = second.json()
    assert successor["refresh_token"] not in (first["refresh_token"], None)
    assert successor["scope"] == MANAGER_SCOPE
    assert world.principal(successor["access_token"]) is not None
    # The first refresh token comes back: a replay.
    reuse = await driver.send(TOKEN, refresh_body(world, first["refresh_token"]))
    assert_error(reuse, 400, "invalid_grant")
    assert "refresh.reused" in world.event_names()
    # The whole family is dead: the successor and both access tokens.
    assert_error(
        await driver.send(TOKEN, refresh_body(world, successor["refresh_token"])),
        400,
        "invalid_grant",
    )
    for token in (successor["access_token"], first["access_token"]):
        with pytest.raises(InvalidToken):
            world.principal(token)


async def test_refresh_may_narrow_the_scope(driver: Driver, world: World) -> None:
    first = (await login(driver, world)).json()
    reply = await driver.send(
        TOKEN, refresh_body(world, first["refresh_token"], scope="reports:read")
    )
    assert reply.status == 200
    assert reply.json()["scope"] == "reports:read"
    principal = world.principal(reply.json()["access_token"])
    assert principal is not None
    assert principal.scopes == {"reports:read"}


async def test_refresh_may_not_widen_the_scope_and_the_refusal_does_not_spend_the_token(
    driver: Driver, world: World
) -> None:
    first = (await login(driver, world, scope="reports:read")).json()
    wider = await driver.send(
        TOKEN, refresh_body(world, first["refresh_token"], scope="reports:read admin")
    )
    assert_error(wider, 400, "invalid_scope")
    also_wider = await driver.send(
        TOKEN, refresh_body(world, first["refresh_token"], scope="appointments:read")
    )
    assert_error(also_wider, 400, "invalid_scope")
    again = await driver.send(TOKEN, refresh_body(world, first["refresh_token"]))
    assert again.status == 200
    assert again.json()["scope"] == "reports:read"


@pytest.mark.parametrize(
    "scope",
    ["reports:read  appointments:read", "reports:read\tappointments:read", " ", " reports:read"],
)
async def test_a_malformed_scope_is_refused_before_the_refresh_token_is_spent(
    driver: Driver, world: World, scope: str
) -> None:
    # RFC 6749 section 3.3: scope-tokens separated by one space. A refusal must
    # leave the token to its owner: spent, its retry would read as a replay and
    # end the whole login.
    first = (await login(driver, world)).json()
    odd = await driver.send(TOKEN, refresh_body(world, first["refresh_token"], scope=scope))
    assert_error(odd, 400, "invalid_scope")
    again = await driver.send(TOKEN, refresh_body(world, first["refresh_token"]))
    assert again.status == 200
    assert "refresh.reused" not in world.event_names()
    assert world.principal(first["access_token"]) is not None


@pytest.mark.parametrize(
    "name", ["user", "authmw_issued", "authmw_code", "authmw_family", "extra_credentials", "client"]
)
async def test_parameters_the_endpoint_does_not_know_are_ignored(
    driver: Driver, world: World, name: str
) -> None:
    # RFC 6749 section 3.2. oauthlib would make each an attribute of its request,
    # where the names above hold the grant's own state.
    machine = form(grant_type="client_credentials", **world.creds(world.machine), **{name: "x"})
    reply = await driver.send(TOKEN, machine)
    assert reply.status == 200, reply.body
    assert reply.json()["scope"] == "reports:read"
    first = (await login(driver, world)).json()
    refreshed = await driver.send(TOKEN, refresh_body(world, first["refresh_token"], **{name: "x"}))
    assert refreshed.status == 200, refreshed.body
    assert world.principal(refreshed.json()["access_token"]) is not None


async def test_a_refresh_token_of_one_app_is_an_invalid_grant_for_another(
    wsgi: Driver, world: World
) -> None:
    other = world.auth.clients.create_app(
        "other", redirect_uris=["https://other.example/cb"], first_party=True
    )
    token = (await login(wsgi, world)).json()["refresh_token"]
    stolen = form(grant_type="refresh_token", refresh_token=token, **world.creds(other))
    assert_error(await wsgi.send(TOKEN, stolen), 400, "invalid_grant")
    # Not a replay: the rightful app still rotates it, and the family lives.
    assert "refresh.reused" not in world.event_names()
    assert (await wsgi.send(TOKEN, refresh_body(world, token))).status == 200


@pytest.mark.parametrize("token", ["garbage", "amr_", "amt_x", "amr_" + "a" * 12 + "_" + "b" * 38])
async def test_a_malformed_refresh_token_is_an_invalid_grant(
    wsgi: Driver, world: World, token: str
) -> None:
    assert_error(await wsgi.send(TOKEN, refresh_body(world, token)), 400, "invalid_grant")


# -- the client_credentials grant (RFC 6749 section 4.4) ------------------------------------


async def test_client_credentials_issue_a_team_bound_token_without_refresh_token(
    driver: Driver, world: World
) -> None:
    body = form(grant_type="client_credentials", **world.creds(world.machine))
    reply = await driver.send(TOKEN, body)
    assert reply.status == 200
    assert no_store(reply)
    token = reply.json()
    assert sorted(token) == ["access_token", "expires_in", "scope", "token_type"]
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "reports:read"
    principal = world.principal(token["access_token"])
    assert principal is not None
    assert principal.kind == "client"
    assert principal.team == "ops"
    assert principal.roles == {"employee"}
    assert principal.scopes == {"reports:read"}
    assert principal.client_id == world.machine.client.id


async def test_client_credentials_by_http_basic(driver: Driver, world: World) -> None:
    reply = await driver.send(
        TOKEN, form(grant_type="client_credentials"), headers=world.basic(world.machine)
    )
    assert reply.status == 200


async def test_client_credentials_beyond_the_clients_scope_is_invalid_scope(
    wsgi: Driver, world: World
) -> None:
    body = form(grant_type="client_credentials", scope="admin", **world.creds(world.machine))
    assert_error(await wsgi.send(TOKEN, body), 400, "invalid_scope")


async def test_a_public_app_cannot_use_client_credentials(wsgi: Driver, world: World) -> None:
    body = form(grant_type="client_credentials", client_id=world.public.client.id)
    assert_error(await wsgi.send(TOKEN, body), 401, "invalid_client")


async def test_an_app_with_a_secret_cannot_use_client_credentials(
    wsgi: Driver, world: World
) -> None:
    for app in (world.web, world.third):
        body = form(grant_type="client_credentials", **world.creds(app))
        assert_error(await wsgi.send(TOKEN, body), 400, "unauthorized_client")


async def test_a_machine_client_cannot_use_a_user_grant(wsgi: Driver, world: World) -> None:
    body = form(grant_type="refresh_token", refresh_token="x", **world.creds(world.machine))
    assert_error(await wsgi.send(TOKEN, body), 400, "unauthorized_client")


# -- the request itself (RFC 6749 section 3.2) ----------------------------------------------


async def test_a_missing_grant_type_is_invalid_request(driver: Driver, world: World) -> None:
    body = form(username="manager", password=PASSWORD, **world.creds(world.web))
    assert_error(await driver.send(TOKEN, body), 400, "invalid_request")


@pytest.mark.parametrize("grant_type", ["implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer"])
async def test_an_unknown_grant_type_is_unsupported(
    wsgi: Driver, world: World, grant_type: str
) -> None:
    body = form(grant_type=grant_type, **world.creds(world.web))
    assert_error(await wsgi.send(TOKEN, body), 400, "unsupported_grant_type")


REPEATABLE = {
    "grant_type": "password",
    "username": "manager",
    "password": PASSWORD,
    "scope": "reports:read",
    "refresh_token": "amr_x",
    "client_id": None,
    "client_secret": None,
}


@pytest.mark.parametrize("name", REPEATABLE)
async def test_a_repeated_parameter_is_invalid_request(
    wsgi: Driver, world: World, name: str
) -> None:
    params = {
        "grant_type": "password",
        "username": "manager",
        "password": PASSWORD,
        **world.creds(world.web),
    }
    value = REPEATABLE[name] or params[name]
    # Sent twice with the same value: even an identical repeat is refused (RFC 6749 section 3.2).
    pairs = [(k, v) for k, v in params.items() if k != name]
    body = form(*pairs, (name, value), (name, value))
    reply = await wsgi.send(TOKEN, body)
    assert_error(reply, 400, "invalid_request")
    assert name in reply.json()["error_description"]
    assert not [n for n in world.event_names() if n.startswith("login.")]


@pytest.mark.parametrize(
    "query",
    ["client_secret=x", "grant_type=password", "scope=admin", "a=b"],
)
async def test_parameters_in_the_query_string_are_invalid_request(
    driver: Driver, world: World, query: str
) -> None:
    # A perfectly good body, so only the query can be the reason.
    reply = await driver.send(TOKEN, world.login_body(), query=query)
    assert_error(reply, 400, "invalid_request")


async def test_the_client_secret_in_the_query_string_is_never_used(
    wsgi: Driver, world: World
) -> None:
    assert world.web.secret is not None
    body = form(grant_type="password", username="manager", password=PASSWORD)
    query = form(client_id=world.web.client.id, client_secret=world.web.secret).decode()
    reply = await wsgi.send(TOKEN, body, query=query)
    assert_error(reply, 400, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_only_post_is_allowed(driver: Driver, world: World, method: str) -> None:
    reply = await driver.send(TOKEN, method=method, content_type=None)
    assert reply.status == 405
    assert reply.header("allow") == "POST"
    assert no_store(reply)


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "text/plain", "multipart/form-data; boundary=x"]
)
async def test_a_body_that_is_not_a_form_is_invalid_request(
    driver: Driver, world: World, content_type: str | None
) -> None:
    reply = await driver.send(TOKEN, world.login_body(), content_type=content_type)
    assert_error(reply, 400, "invalid_request")


async def test_a_charset_parameter_on_the_form_type_is_accepted(wsgi: Driver, world: World) -> None:
    reply = await wsgi.send(
        TOKEN, world.login_body(), content_type="application/x-www-form-urlencoded; charset=UTF-8"
    )
    assert reply.status == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"&username=%FF%FE",  # percent-encoded bytes that are not UTF-8
        "&username=m\u00e4nager".encode(),  # raw non-ASCII bytes: a form is ASCII
        b"&username=\xff",  # raw bytes that are not even UTF-8
    ],
    ids=["percent-non-utf8", "raw-utf8", "raw-non-utf8"],
)
async def test_a_body_that_is_not_ascii_utf8_form_data_is_invalid_request(
    driver: Driver, world: World, raw: bytes
) -> None:
    body = form(grant_type="password", password=PASSWORD, **world.creds(world.web)) + raw
    assert_error(await driver.send(TOKEN, body), 400, "invalid_request")


async def test_a_body_over_the_limit_is_413(driver: Driver, world: World) -> None:
    body = world.login_body() + b"&pad=" + b"x" * MAX_BODY
    reply = await driver.send(TOKEN, body)
    assert (reply.status, reply.error) == (413, "invalid_request")
    assert no_store(reply)


async def test_a_body_at_the_limit_is_read(wsgi: Driver, world: World) -> None:
    body = world.login_body() + b"&pad="
    body += b"x" * (MAX_BODY - len(body))
    assert len(body) == MAX_BODY
    assert (await wsgi.send(TOKEN, body)).status == 200


async def test_blank_parameters_are_treated_as_omitted(driver: Driver, world: World) -> None:
    # A blank scope is no scope: the default (everything the user may have).
    reply = await driver.send(TOKEN, world.login_body(scope=""))
    assert reply.status == 200
    assert reply.json()["scope"] == MANAGER_SCOPE
    # A blank client_secret beside HTTP Basic is not a second way to authenticate.
    body = form(grant_type="password", username="manager", password=PASSWORD, client_secret="")
    reply = await driver.send(TOKEN, body, headers=world.basic(world.web))
    assert reply.status == 200
    # A blank grant_type or password is a missing one.
    blank_grant = form(
        grant_type="", username="manager", password=PASSWORD, **world.creds(world.web)
    )
    assert_error(await driver.send(TOKEN, blank_grant), 400, "invalid_request")
    assert_error(await driver.send(TOKEN, world.login_body(password="")), 400, "invalid_request")


# -- client authentication (RFC 6749 section 2.3.1) -----------------------------------------


def client_credentials(**extra: str) -> bytes:
    return form(grant_type="client_credentials", **extra)


async def test_basic_credentials_are_form_url_decoded(driver: Driver, world: World) -> None:
    client_id, secret = world.machine.client.id, world.machine.secret
    assert secret is not None
    # "%41"-style escapes of the first character of the id and of the secret's
    # separator: only a server that form-decodes both halves accepts this.
    encoded_id = f"%{ord(client_id[0]):02X}{client_id[1:]}"
    encoded_secret = secret.replace("_", "%5F")
    assert encoded_id != client_id
    assert encoded_secret != secret
    header = {"Authorization": basic(encoded_id, encoded_secret)}
    reply = await driver.send(TOKEN, client_credentials(), headers=header)
    assert reply.status == 200
    principal = world.principal(reply.json()["access_token"])
    assert principal is not None
    assert principal.client_id == client_id


async def test_the_basic_scheme_name_is_case_insensitive(driver: Driver, world: World) -> None:
    assert world.machine.secret is not None
    value = basic(world.machine.client.id, world.machine.secret).split(" ", 1)[1]
    for scheme in ("basic", "BASIC", "bAsIc"):
        header = {"Authorization": f"{scheme} {value}"}
        assert (await driver.send(TOKEN, client_credentials(), headers=header)).status == 200


async def test_two_authorization_headers_are_invalid_request(world: World) -> None:
    # Only ASGI can carry two: a WSGI environ has one HTTP_AUTHORIZATION.
    good = world.basic(world.machine)["Authorization"]
    transport = httpx.ASGITransport(app=world.endpoints.asgi(), client=("192.0.2.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(
            TOKEN,
            content=client_credentials(),
            headers=[("Content-Type", FORM), ("Authorization", good), ("Authorization", good)],
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_form_secret_without_a_client_id_is_invalid_client(
    wsgi: Driver, world: World
) -> None:
    assert world.machine.secret is not None
    body = client_credentials(client_secret=world.machine.secret)
    assert_error(await wsgi.send(TOKEN, body), 401, "invalid_client")


async def test_basic_and_a_form_secret_together_are_invalid_request(
    driver: Driver, world: World
) -> None:
    assert world.machine.secret is not None
    body = client_credentials(client_secret=world.machine.secret)
    reply = await driver.send(TOKEN, body, headers=world.basic(world.machine))
    assert_error(reply, 400, "invalid_request")


async def test_a_form_client_id_must_match_the_basic_one(wsgi: Driver, world: World) -> None:
    header = world.basic(world.machine)
    other = client_credentials(client_id=world.web.client.id)
    assert_error(await wsgi.send(TOKEN, other, headers=header), 400, "invalid_request")
    same = client_credentials(client_id=world.machine.client.id)
    assert (await wsgi.send(TOKEN, same, headers=header)).status == 200


async def test_unknown_client_and_wrong_secret_get_the_same_401(
    driver: Driver, world: World
) -> None:
    machine = world.machine.client.id
    assert world.machine.secret is not None
    assert world.web.secret is not None
    # A well-formed secret naming an unknown id, a wrong secret for a real id, the
    # secret of another client, and a secret that is not even in our format.
    wrong = world.machine.secret[:-10] + ("A" if world.machine.secret[-10] != "A" else "B")
    wrong += world.machine.secret[-9:]
    unknown = world.auth.clients._new_secret()[0]
    attempts = [
        (unknown.split("_")[1], unknown),
        (machine, wrong),
        (machine, world.web.secret),
        (machine, "hunter2"),
        ("no-such-client", "hunter2"),
    ]
    replies = []
    for client_id, secret in attempts:
        replies.append(
            await driver.send(TOKEN, client_credentials(client_id=client_id, client_secret=secret))
        )
        replies.append(
            await driver.send(
                TOKEN, client_credentials(), headers={"Authorization": basic(client_id, secret)}
            )
        )
    realm = world.auth.settings.realm
    for reply in replies:
        assert_error(reply, 401, "invalid_client")
        assert reply.header("www-authenticate") == f'Basic realm="{realm}"'
    assert len({r.body for r in replies}) == 1
    assert len({r.headers for r in replies}) == 1


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
        "Basic " + base64.b64encode(b"id:\xc3").decode(),
        "Basic",
        "Basic ",
        "Basic a",
        "Bearer some-token",
        "Digest username=x",
    ],
)
async def test_malformed_basic_credentials_are_invalid_client(
    driver: Driver, world: World, authorization: str
) -> None:
    reply = await driver.send(TOKEN, client_credentials(), headers={"Authorization": authorization})
    assert_error(reply, 401, "invalid_client")
    assert reply.header("www-authenticate") == f'Basic realm="{world.auth.settings.realm}"'


async def test_a_disabled_client_is_invalid_client(driver: Driver, world: World) -> None:
    world.auth.clients.disable(world.machine.client.id)
    body = client_credentials(**world.creds(world.machine))
    assert_error(await driver.send(TOKEN, body), 401, "invalid_client")
    world.auth.clients.disable(world.web.client.id)
    assert_error(await driver.send(TOKEN, world.login_body()), 401, "invalid_client")


async def test_a_rotated_secret_works_during_its_grace_and_not_after(
    wsgi: Driver, world: World
) -> None:
    old = world.creds(world.machine)
    rotated = world.auth.clients.rotate_secret(world.machine.client.id, grace=timedelta(hours=1))
    assert rotated.secret is not None
    new = {"client_id": rotated.client.id, "client_secret": rotated.secret}
    assert (await wsgi.send(TOKEN, client_credentials(**old))).status == 200
    assert (await wsgi.send(TOKEN, client_credentials(**new))).status == 200
    # The grace ends (a state the API reaches only by waiting: written to the store).
    world.auth.store.update_client(
        world.machine.client.id,
        previous_secret_hash=rotated.client.previous_secret_hash,
        previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    assert_error(await wsgi.send(TOKEN, client_credentials(**old)), 401, "invalid_client")
    assert (await wsgi.send(TOKEN, client_credentials(**new))).status == 200


async def test_a_secret_rotated_without_grace_stops_at_once(wsgi: Driver, world: World) -> None:
    old = world.creds(world.machine)
    world.auth.clients.rotate_secret(world.machine.client.id)
    assert_error(await wsgi.send(TOKEN, client_credentials(**old)), 401, "invalid_client")


async def test_no_client_credentials_at_all_is_invalid_client(driver: Driver, world: World) -> None:
    body = form(grant_type="password", username="manager", password=PASSWORD)
    assert_error(await driver.send(TOKEN, body), 401, "invalid_client")
    assert_error(await driver.send(TOKEN, client_credentials()), 401, "invalid_client")


async def test_other_paths_are_not_served(wsgi: Driver, world: World) -> None:
    reply = await wsgi.send("/oauth/tokens", world.login_body())
    assert reply.status == 404
