"""Contract tests: every request `identity.client` sends to Auth0, held against the
official Python SDK, auth0-python (pinned in the `dev` extra of pyproject.toml).

auth0-python 5 and later is generated from Auth0's own Management API definition,
so its methods carry that definition's paths, methods, query parameters and body
fields with their types. For each row of `CONTRACTS`:

1. our client sends its request through an `httpx.MockTransport`, which keeps it;
2. the SDK's method for the same operation is called through its own seam
   (`ManagementClient(httpx_client=...)`) with the row's path ids and with the
   body and query taken from OUR request: a field the SDK's operation does not
   have fails right there;
3. the two requests must agree: method, percent-encoded path, every query
   parameter we send (same value; the SDK adds its paging defaults), and the JSON
   body exactly. Every value we send must validate against the SDK's type for it,
   strictly (the generated client has no request models for these bodies: each
   body field is a typed keyword of the method, so those types are the request
   types); where that type is an enum, the value must be one of its members
   (the SDK's `Literal[...] | Any` lets unknown values through for forward
   compatibility; a renamed value of ours must not pass).

So a renamed path, method, query parameter or body field in our client fails a
test here instead of a customer's reset. Adding a call is one row.

Scopes: no installable definition carries the scopes per operation (the SDK has
only the list of all scopes, `OauthScope`; the npm `auth0` package the same; the
OpenAPI file Auth0 once vendored into go-auth0 is not on a package registry).
Each row names its scopes from Auth0's docs (docs/auth0.md, "What Auth0 does,
with sources", cites them); the tests check that each is a scope the SDK knows
and that docs/auth0.md names it in a table row for that very call (method and
path as our client sends them).
"""

from __future__ import annotations

import json
import threading
import typing
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from inspect import getsource, signature
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pydantic
import pytest
from auth0.authentication import GetToken
from auth0.management import ManagementClient
from auth0.management.types import connection_options
from auth0.management.types.oauth_scope import OauthScope

from identity.client import Auth0Client
from identity.token import TokenCache
from tests.auth0_fixtures import BASE_URL, CLIENT_ID, CLIENT_SECRET, CONNECTION, DOMAIN, FakeTime

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).resolve().parents[2] / "docs" / "auth0.md"

# An id with every character that must be percent-encoded in a path segment: "|" of
# every Auth0 user id, and "/", " ", "+" that would change the path or its meaning.
USER_ID = "auth0|5f7c8ec7c33c6c004bbafe82/../x y+z"
EMAIL = "jane.doe@example.com"
DEVICE_CREDENTIAL_ID = "dcr_0000000000000001"
PASSWORD = "Corr3ct-Horse-Battery"

# Scopes Auth0 documents that the SDK's `OauthScope` list does not have yet; each
# with the place in the SDK that names it, so the exception stays checked.
SCOPES_OUTSIDE_THE_LIST: dict[str, str] = {
    # The SDK's own ConnectionOptions type says: "In order to return options in the
    # response, the `read:connections_options` scope must be present".
    "read:connections_options": getsource(connection_options),
}


class ContractBroken(AssertionError):
    """Our request and the official definition disagree."""


Call = Callable[[Auth0Client], Awaitable[object]]
Answer = Callable[[httpx.Request], httpx.Response]


def ours_answer(request: httpx.Request) -> httpx.Response:
    """What the client needs back to finish each call (its parsing is tested elsewhere)."""
    if request.url.path.endswith("/users-by-email"):
        return httpx.Response(200, json=[])
    if request.method in ("GET", "PATCH") and "/users/" in request.url.path:
        return httpx.Response(200, json={"user_id": USER_ID, "email": EMAIL})
    if request.url.path.endswith("/device-credentials"):
        return httpx.Response(200, json=[])
    if request.url.path.endswith("/connections"):
        return httpx.Response(200, json=[])
    return httpx.Response(204)


def one_refresh_token(request: httpx.Request) -> httpx.Response:
    """The user has one refresh token, so revoking them lists it, then deletes it."""
    if request.method == "GET" and request.url.path.endswith("/device-credentials"):
        return httpx.Response(200, json=[{"id": DEVICE_CREDENTIAL_ID, "type": "refresh_token"}])
    return ours_answer(request)


def sdk_answer(request: httpx.Request) -> httpx.Response:
    """Just enough for the SDK to parse its answer (it validates list shapes)."""
    path = request.url.path
    if path.endswith("/users-by-email"):
        return httpx.Response(200, json=[])
    if path.endswith("/device-credentials"):
        return httpx.Response(
            200, json={"device_credentials": [], "start": 0, "limit": 50, "total": 0}
        )
    if path.endswith("/connections"):
        return httpx.Response(200, json={"connections": []})
    if request.method in ("GET", "PATCH"):
        return httpx.Response(200, json={"user_id": USER_ID})
    return httpx.Response(204)


async def planned(client: Auth0Client, method: str, path: str, **kwargs: Any) -> object:
    """A request issued the way the client issues every call (its `_request`: token,
    retries, same transport): the deliberately broken requests below go through it."""
    return await client._request(method, path, **kwargs)


@dataclass(frozen=True)
class Contract:
    name: str
    ours: Call  # makes our request(s)
    sdk: str  # the SDK's method for the same operation, from ManagementClient
    ids: tuple[str, ...]  # that method's path parameters
    scopes: tuple[str, ...]  # what Auth0's docs say the call needs
    covers: str = ""  # the Auth0Client method this row checks ("" for a planned call)
    sends: frozenset[str] = field(default_factory=frozenset)  # body fields we must send
    answer: Answer = ours_answer
    pick: int = 0  # which of our requests (in order, token requests aside) to check


def user_path(suffix: str = "") -> str:
    return f"/api/v2/users/{USER_ID}{suffix}"


CONTRACTS: list[Contract] = [
    Contract("users-by-email", lambda c: c.users_by_email(EMAIL), "users.list_users_by_email",
             (), ("read:users",), covers="users_by_email"),
    Contract("find database user", lambda c: c.find_database_user(EMAIL.upper()),
             "users.list_users_by_email", (), ("read:users",), covers="find_database_user"),
    Contract("get user", lambda c: c.get_user(USER_ID), "users.get", (USER_ID,),
             ("read:users",), covers="get_user"),
    Contract("PATCH password", lambda c: c.set_password(USER_ID, PASSWORD), "users.update",
             (USER_ID,), ("update:users",), covers="set_password",
             sends=frozenset({"password", "connection"})),
    Contract("PATCH password with app_metadata",
             lambda c: c.set_password(USER_ID, PASSWORD, app_metadata={"resetrelay": {"n": 1}}),
             "users.update", (USER_ID,), ("update:users",), covers="set_password",
             sends=frozenset({"password", "connection", "app_metadata"})),
    Contract("PATCH email_verified", lambda c: c.mark_email_verified(USER_ID), "users.update",
             (USER_ID,), ("update:users",), covers="mark_email_verified",
             sends=frozenset({"email_verified"})),
    Contract("PATCH blocked", lambda c: c.set_blocked(USER_ID, True), "users.update",
             (USER_ID,), ("update:users",), covers="set_blocked",
             sends=frozenset({"blocked"})),
    Contract("PATCH blocked false", lambda c: c.set_blocked(USER_ID, False), "users.update",
             (USER_ID,), ("update:users",), covers="set_blocked",
             sends=frozenset({"blocked"})),
    Contract("user-blocks delete", lambda c: c.unblock(USER_ID), "user_blocks.delete",
             (USER_ID,), ("update:users",), covers="unblock"),
    Contract("revoke-access", lambda c: c.revoke_access(USER_ID), "users.revoke_access",
             (USER_ID,), ("delete:sessions", "delete:refresh_tokens"), covers="revoke_access"),
    Contract("invalidate-remember-browser", lambda c: c.invalidate_remember_browser(USER_ID),
             "users.multifactor.invalidate_remember_browser", (USER_ID,), ("update:users",),
             covers="invalidate_remember_browser"),
    Contract("device-credentials list", lambda c: c.refresh_token_ids(USER_ID),
             "device_credentials.list", (), ("read:device_credentials",),
             covers="refresh_token_ids"),
    Contract("device-credentials delete",
             lambda c: c.delete_device_credential(DEVICE_CREDENTIAL_ID),
             "device_credentials.delete", (DEVICE_CREDENTIAL_ID,), ("delete:device_credentials",),
             covers="delete_device_credential"),
    Contract("refresh tokens revoked one by one", lambda c: c.revoke_refresh_tokens(USER_ID),
             "device_credentials.delete", (DEVICE_CREDENTIAL_ID,), ("delete:device_credentials",),
             covers="revoke_refresh_tokens", answer=one_refresh_token, pick=1),
    Contract("connections by name", lambda c: c.database_connection(), "connections.list", (),
             ("read:connections", "read:connections_options"), covers="database_connection"),
]  # fmt: skip


# -- capturing both sides ---------------------------------------------------------------


async def our_requests(call: Call, answer: Answer) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    async def route(request: httpx.Request) -> httpx.Response:
        await request.aread()
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 86400})
        seen.append(request)
        return answer(request)

    time = FakeTime()
    async with Auth0Client(
        base_url=BASE_URL,
        domain=DOMAIN,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        connection=CONNECTION,
        transport=httpx.MockTransport(route),
        clock=time.clock,
        sleep=time.sleep,
    ) as client:
        await call(client)
    return seen


@contextmanager
def sdk_method(name: str) -> Iterator[tuple[Callable[..., object], list[httpx.Request]]]:
    """The SDK's method `name` (dotted, from ManagementClient), and the requests it sends."""
    seen: list[httpx.Request] = []

    def route(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return sdk_answer(request)

    with httpx.Client(transport=httpx.MockTransport(route)) as http:
        target: Any = ManagementClient(domain=DOMAIN, token="tok", httpx_client=http)
        for part in name.split("."):
            target = getattr(target, part)
        yield target, seen


def json_body(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def path_of(request: httpx.Request) -> str:
    return request.url.raw_path.decode("ascii").partition("?")[0]


# -- the types of the definition ----------------------------------------------------------


def enum_members(annotation: Any) -> set[str] | None:
    """The members of the first `Literal[...]` inside a type, or None if it has none."""
    if typing.get_origin(annotation) is typing.Literal:
        return {str(v) for v in typing.get_args(annotation)}
    for inner in typing.get_args(annotation):
        found = enum_members(inner)
        if found is not None:
            return found
    return None


def python_name(wire: str, parameters: dict[str, Any]) -> str:
    """The SDK's keyword for a wire name (`from` is `from_` in Python)."""
    for candidate in (wire, f"{wire}_"):
        if candidate in parameters:
            return candidate
    raise ContractBroken(f"the official operation has no field {wire!r}")


def check_value(where: str, name: str, value: Any, annotation: Any, *, strict: bool) -> Any:
    members = enum_members(annotation)
    if members is not None and str(value) not in members:
        raise ContractBroken(f"{where} {name}={value!r} is not one of {sorted(members)}")
    try:
        return pydantic.TypeAdapter(annotation).validate_python(value, strict=strict)
    except pydantic.ValidationError as exc:
        raise ContractBroken(f"{where} {name}={value!r} is not the official type: {exc}") from exc


async def check(row: Contract) -> None:
    """Raise ContractBroken where our request differs from the official definition."""
    requests = await our_requests(row.ours, row.answer)
    if len(requests) <= row.pick:
        raise ContractBroken(f"{row.name}: our client made {len(requests)} request(s)")
    ours = requests[row.pick]

    with sdk_method(row.sdk) as (method, seen):
        official = official_request(row, ours, method, seen)
    compare(row, ours, official)


def official_request(
    row: Contract, ours: httpx.Request, method: Callable[..., object], seen: list[httpx.Request]
) -> httpx.Request:
    """The SDK's request for the same operation with the same values as ours."""
    hints = typing.get_type_hints(method)
    parameters = dict(signature(method).parameters)
    kwargs: dict[str, Any] = {}

    body = json_body(ours)
    if body is not None and not isinstance(body, dict):
        raise ContractBroken(f"{row.name}: our body is not a JSON object")
    for wire, value in (body or {}).items():
        name = python_name(wire, parameters)
        kwargs[name] = check_value("body field", wire, value, hints[name], strict=True)
    missing = row.sends - set(body or {})
    if missing:
        raise ContractBroken(f"{row.name}: our body lacks {sorted(missing)}")

    for wire, value in ours.url.params.multi_items():
        name = python_name(wire, parameters)
        # On the wire every query value is text: the SDK's type decides how it reads it.
        kwargs[name] = check_value("query parameter", wire, value, hints[name], strict=False)

    method(*row.ids, **kwargs)
    if len(seen) != 1:
        raise ContractBroken(f"{row.name}: the SDK made {len(seen)} requests")
    return seen[0]


def compare(row: Contract, ours: httpx.Request, official: httpx.Request) -> None:
    if ours.method != official.method:
        raise ContractBroken(f"{row.name}: method {ours.method}, officially {official.method}")
    if path_of(ours) != path_of(official):
        raise ContractBroken(f"{row.name}: path {path_of(ours)}, officially {path_of(official)}")
    official_query = dict(official.url.params.multi_items())
    for wire, value in ours.url.params.multi_items():
        if official_query.get(wire) != value:
            raise ContractBroken(
                f"{row.name}: query {wire}={value!r}, officially {official_query.get(wire)!r}"
            )
    # An empty body and `{}` are one thing (revoke-access: the SDK sends `{}`, as we do).
    if (json_body(ours) or {}) != (json_body(official) or {}):
        raise ContractBroken(
            f"{row.name}: body {json_body(ours)!r}, officially {json_body(official)!r}"
        )
    if ours.content and ours.headers.get("content-type") != "application/json":
        raise ContractBroken(f"{row.name}: a body that is not sent as application/json")


# -- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("row", CONTRACTS, ids=[row.name for row in CONTRACTS])
async def test_our_request_is_the_official_one(row: Contract) -> None:
    await check(row)


def test_every_call_of_the_client_has_a_contract() -> None:
    calls = {
        name
        for name, member in vars(Auth0Client).items()
        if not name.startswith("_") and callable(member) and name != "aclose"
    }
    assert calls <= {row.covers for row in CONTRACTS}, calls - {row.covers for row in CONTRACTS}


def all_scopes() -> set[str]:
    return enum_members(OauthScope) or set()


@pytest.mark.parametrize("row", CONTRACTS, ids=[row.name for row in CONTRACTS])
def test_each_scope_is_one_auth0_defines_and_the_docs_list(row: Contract) -> None:
    documented = DOCS.read_text(encoding="utf-8")
    for scope in row.scopes:
        known = scope in all_scopes() or f"`{scope}`" in SCOPES_OUTSIDE_THE_LIST.get(scope, "")
        assert known, f"{scope} is not a Management API scope the SDK knows"
        assert f"`{scope}`" in documented, f"docs/auth0.md does not list {scope}"


def route_of(request: httpx.Request) -> str:
    """`METHOD /path` as docs/auth0.md writes it: ids as `{id}`, no query."""
    path = path_of(request)
    for value in (USER_ID, DEVICE_CREDENTIAL_ID):
        path = path.replace(quote(value, safe=""), "{id}")
    return f"{request.method} {path}"


@pytest.mark.parametrize("row", CONTRACTS, ids=[row.name for row in CONTRACTS])
async def test_the_docs_name_each_call_with_its_scopes(row: Contract) -> None:
    ours = (await our_requests(row.ours, row.answer))[row.pick]
    route = route_of(ours)
    lines = [
        line
        for line in DOCS.read_text(encoding="utf-8").splitlines()
        if line.startswith(f"| `{route}") and line[len(f"| `{route}")] in "`?"
    ]
    assert lines, f"docs/auth0.md has no table row for {route}"
    assert any(all(f"`{scope}`" in line for scope in row.scopes) for line in lines), (
        f"no row for {route} in docs/auth0.md names {row.scopes}"
    )


def test_scopes_outside_the_list_are_still_outside_it() -> None:
    # When the SDK adds them to OauthScope, drop them from SCOPES_OUTSIDE_THE_LIST.
    assert not set(SCOPES_OUTSIDE_THE_LIST) & all_scopes()


# -- the checker itself fails on a renamed path, field, parameter or value ----------------


BROKEN: list[Contract] = [
    Contract("renamed path", lambda c: planned(c, "GET", "/api/v2/users_by_email",
             params={"email": EMAIL}), "users.list_users_by_email", (), ()),
    Contract("renamed query parameter", lambda c: planned(c, "GET", "/api/v2/users-by-email",
             params={"mail": EMAIL}), "users.list_users_by_email", (), ()),
    Contract("renamed body field", lambda c: planned(c, "PATCH", user_path(),
             json={"new_password": PASSWORD, "connection": CONNECTION}), "users.update",
             (USER_ID,), ()),
    Contract("wrong body type", lambda c: planned(c, "PATCH", user_path(),
             json={"email_verified": "true"}), "users.update", (USER_ID,), ()),
    Contract("wrong method", lambda c: planned(c, "PUT", user_path(),
             json={"email_verified": True}), "users.update", (USER_ID,), ()),
    Contract("unencoded id", lambda c: planned(c, "GET", "/api/v2/users/auth0|x"),
             "users.get", ("auth0|x",), ()),
    Contract("renamed enum value", lambda c: planned(c, "GET", "/api/v2/device-credentials",
             params={"user_id": USER_ID, "type": "refresh_tokens"}),
             "device_credentials.list", (), ()),
    Contract("a required field left out", lambda c: planned(c, "PATCH", user_path(),
             json={"password": PASSWORD}), "users.update", (USER_ID,), (),
             sends=frozenset({"password", "connection"})),
]  # fmt: skip


@pytest.mark.parametrize("row", BROKEN, ids=[row.name for row in BROKEN])
async def test_the_check_catches(row: Contract) -> None:
    with pytest.raises(ContractBroken):
        await check(row)


# -- the token: the SDK's client-credentials request, over real HTTP ----------------------


@pytest.fixture
def token_server() -> Iterator[tuple[str, list[tuple[str, str, dict[str, str], bytes]]]]:
    """A local HTTP server that keeps what it receives and answers like /oauth/token.
    The SDK's authentication client has no transport seam, only `protocol`."""
    received: list[tuple[str, str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            received.append(("POST", self.path, dict(self.headers), self.rfile.read(length)))
            answer = json.dumps({"access_token": "tok", "expires_in": 86400}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


async def test_the_token_request_is_the_official_one(
    token_server: tuple[str, list[tuple[str, str, dict[str, str], bytes]]],
) -> None:
    host, received = token_server
    audience = f"https://{DOMAIN}/api/v2/"
    sdk = GetToken(host, CLIENT_ID, client_secret=CLIENT_SECRET, protocol="http", telemetry=False)
    await anyio.to_thread.run_sync(lambda: sdk.client_credentials(audience))
    [(method, path, headers, content)] = received
    official = {k: v for k, v in json.loads(content).items() if v is not None}

    seen: list[httpx.Request] = []

    async def route(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        return httpx.Response(200, json={"access_token": "tok", "expires_in": 86400})

    cache = TokenCache(
        domain=DOMAIN, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=FakeTime().clock
    )
    transport = httpx.MockTransport(route)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        assert await cache.get(http, httpx.Timeout(5)) == "tok"
    [ours] = seen

    assert (ours.method, ours.url.path) == (method, path) == ("POST", "/oauth/token")
    assert ours.headers["content-type"] == headers.get("Content-Type") == "application/json"
    assert json.loads(ours.content) == official
    assert official["audience"] == audience
    assert official["grant_type"] == "client_credentials"
