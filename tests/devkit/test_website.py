"""The demo website against a fake resetrelay that checks every signature.

The website is driven in-process (httpx.ASGITransport); its own calls go through
httpx.MockTransport to `FakeRelay`, which verifies the Standard Webhooks signature
with resetrelay's own `resetrelay.webhooks.verify` and answers per the contract, and to
a fake Auth0 token endpoint for the sign-in page.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from devkit.website import create_website, sign_webhook
from resetrelay.webhooks import InvalidSignature, verify
from tests.conftest import WEBHOOK_SECRET

KEY = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
TICKET = "kq3V4pX0Zb2m8wq9-7Yt_1bJxNfD3cWm5uHs0aLzQeR"
MASKED = "j***@example.com"
BASE = "http://testserver"


@dataclass
class Call:
    type: str
    data: dict[str, Any]
    webhook_id: str


Reply = httpx.Response | Exception


# verify's policy as resetrelay lists it for a tenant on Auth0's "excellent" level.
POLICY: dict[str, Any] = {
    "requirements": [
        {"rule": "min_length", "min": 10, "message": "At least 10 characters"},
        {"rule": "character_types", "min": 3, "message": "At least 3 of these 4 kinds"},
        {"rule": "identical_characters", "max": 2, "message": "No more than 2 alike in a row"},
        {"rule": "max_length", "max_bytes": 72, "message": "At most 72 bytes"},
        {"rule": "history", "size": 5, "message": "Not one of your last 5 passwords"},
    ]
}


@dataclass
class FakeRelay:
    """resetrelay's `/hooks/website` as the website sees it."""

    calls: list[Call] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    queued: dict[str, list[Reply]] = field(default_factory=dict)

    def answer(self, event_type: str, status: int, body: dict[str, Any]) -> None:
        self.queued.setdefault(event_type, []).append(httpx.Response(status, json=body))

    def fail(self, event_type: str, exc: Exception) -> None:
        self.queued.setdefault(event_type, []).append(exc)

    def types(self) -> list[str]:
        return [call.type for call in self.calls]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.url.path == "/hooks/website"
        assert request.headers["content-type"] == "application/json"
        body = request.read()
        try:
            webhook_id, _ = verify(
                request.headers, body, keys=[KEY], now=time.time(), tolerance=300
            )
        except InvalidSignature as exc:
            self.rejected.append(exc.reason)
            return httpx.Response(
                401, json={"error": "invalid_signature", "message": "The webhook signature..."}
            )
        event = json.loads(body)
        assert set(event) == {"type", "timestamp", "data"}
        datetime.fromisoformat(event["timestamp"])
        self.calls.append(Call(event["type"], event["data"], webhook_id))
        queued = self.queued.get(event["type"])
        if queued:
            reply = queued.pop(0)
            if isinstance(reply, Exception):
                raise reply
            return reply
        return self.default(event["type"])

    @staticmethod
    def default(event_type: str) -> httpx.Response:
        if event_type == "password_reset.requested":
            return httpx.Response(202, json={"status": "accepted"})
        if event_type == "password_reset.verify":
            body = {"valid": True, "expires_at": "2030-01-01T00:00:00Z", "email": MASKED}
            return httpx.Response(200, json={**body, "locale": "en", "policy": POLICY})
        if event_type == "password_reset.confirm":
            return httpx.Response(200, json={"status": "completed"})
        return httpx.Response(422, json={"error": "unknown_event_type", "message": "?"})


@dataclass
class FakeAuth0:
    """The emulator's `POST /oauth/token` (password grant) for one user."""

    status: int | None = None
    forms: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/oauth/token"
        form = dict(httpx.QueryParams(request.read().decode()))
        self.forms.append(form)
        if self.status == 429:
            return httpx.Response(
                429, json={"error": "too_many_attempts", "error_description": "Blocked."}
            )
        if form.get("username") == "jane@example.com" and form.get("password") == "S3cret!pass":
            return httpx.Response(200, json={"access_token": "a", "token_type": "Bearer"})
        return httpx.Response(
            403, json={"error": "invalid_grant", "error_description": "Wrong email or password."}
        )


@pytest.fixture
def relay() -> FakeRelay:
    return FakeRelay()


@pytest.fixture
def auth0() -> FakeAuth0:
    return FakeAuth0()


MakeWebsite = Callable[..., Starlette]


@pytest.fixture
def make_website(relay: FakeRelay, auth0: FakeAuth0) -> MakeWebsite:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth0.test":
            return auth0(request)
        assert request.url.host == "resetrelay.test"
        return relay(request)

    def build(**overrides: Any) -> Starlette:
        options: dict[str, Any] = {
            "resetrelay_url": "http://resetrelay.test",
            "webhook_secret": WEBHOOK_SECRET,
            "auth0_url": "http://auth0.test",
            "transport": httpx.MockTransport(route),
        }
        return create_website(**{**options, **overrides})

    return build


@pytest.fixture
async def browser(make_website: MakeWebsite, relay: FakeRelay) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_website(), client=("203.0.113.7", 51000))
    headers = {"user-agent": "TestBrowser/1.0", "accept-language": "de-CH,de;q=0.9,en;q=0.8"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as client:
        yield client
    assert relay.rejected == [], "the website sent a request that failed verification"


async def csrf_token(browser: httpx.AsyncClient) -> str:
    await browser.get("/forgot")
    return browser.cookies["csrftoken"]


async def open_link(browser: httpx.AsyncClient, ticket: str = TICKET) -> httpx.Response:
    """Click the link from the mail, then follow the redirect."""
    landing = await browser.get(f"/account/reset?ticket={ticket}")
    assert landing.status_code == 302
    return await browser.get(landing.headers["location"])


async def submit_password(
    browser: httpx.AsyncClient, password: str = "N3w-Passw0rd", again: str | None = None
) -> httpx.Response:
    token = await csrf_token(browser)
    form = {"csrf_token": token, "password": password, "password_confirm": again or password}
    return await browser.post("/account/reset", data=form)


def assert_reset_headers(response: httpx.Response) -> None:
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert_tight_csp(response)


def assert_tight_csp(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";")}
    assert directives["default-src"] == "default-src 'none'"
    assert directives["script-src"] == "script-src 'self'"
    assert directives["base-uri"] == "base-uri 'none'"
    assert directives["form-action"] == "form-action 'self'"
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert directives["object-src"] == "object-src 'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


# -- Signing ----------------------------------------------------------------------------


def test_sign_webhook_matches_resetrelay() -> None:
    from resetrelay.webhooks import sign

    body = b'{"type":"password_reset.verify","data":{"ticket":"x"}}'
    ours = sign_webhook(WEBHOOK_SECRET, "msg_1", 1_700_000_000, body)
    assert ours == sign(KEY, "msg_1", 1_700_000_000, body)
    assert verify(ours, body, keys=[KEY], now=1_700_000_100, tolerance=300) == (
        "msg_1",
        1_700_000_000,
    )


@pytest.mark.parametrize("secret", ["whsec_not_base64!", "", "whsec_"])
def test_a_bad_secret_fails_at_start_up(make_website: MakeWebsite, secret: str) -> None:
    with pytest.raises(ValueError, match=r"base64|empty"):
        make_website(webhook_secret=secret)


@pytest.mark.anyio
async def test_of_several_secrets_the_first_signs(
    make_website: MakeWebsite, relay: FakeRelay
) -> None:
    older = "whsec_" + base64.b64encode(b"an-older-key-of-24-bytes").decode()
    app = make_website(webhook_secret=f"{WEBHOOK_SECRET} {older}")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        page = await open_link(client)
    assert page.status_code == 200
    assert relay.rejected == []


@pytest.mark.anyio
async def test_every_call_has_a_fresh_webhook_id(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    await open_link(browser)
    await open_link(browser)
    await submit_password(browser)
    ids = [call.webhook_id for call in relay.calls]
    assert len(ids) == 3
    assert len(set(ids)) == 3


@pytest.mark.anyio
async def test_a_website_with_the_wrong_secret_is_refused(
    make_website: MakeWebsite, relay: FakeRelay
) -> None:
    other = "whsec_" + base64.b64encode(b"another-key-of-24-bytes!").decode()
    app = make_website(webhook_secret=other)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        page = await open_link(client)
    assert relay.rejected == ["no matching signature"]
    assert page.status_code == 502  # 401 from resetrelay: the generic error page
    assert "Something went wrong" in page.text
    relay.rejected.clear()


# -- Pages and headers -----------------------------------------------------------------


@pytest.mark.anyio
async def test_home_and_static(browser: httpx.AsyncClient) -> None:
    home = await browser.get("/")
    assert home.status_code == 200
    assert 'href="/forgot"' in home.text
    assert 'href="/signin"' in home.text
    assert home.headers["x-frame-options"] == "DENY"
    assert home.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/site.css", "/static/reset.js"):
        answer = await browser.get(asset)
        assert answer.status_code == 200
        assert answer.headers["x-content-type-options"] == "nosniff"


# -- Forgot password -------------------------------------------------------------------


@pytest.mark.anyio
async def test_forgot_form_is_accessible(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/forgot")
    assert page.status_code == 200
    assert '<label for="email">' in page.text
    assert 'autocomplete="email"' in page.text
    assert f'name="csrf_token" value="{browser.cookies["csrftoken"]}"' in page.text
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


@pytest.mark.anyio
async def test_forgot_sends_a_signed_request(browser: httpx.AsyncClient, relay: FakeRelay) -> None:
    token = await csrf_token(browser)
    page = await browser.post("/forgot", data={"csrf_token": token, "email": " jane@example.com "})
    assert page.status_code == 200
    assert "If an account exists for that address, we've sent a link" in page.text
    [call] = relay.calls
    assert call.type == "password_reset.requested"
    assert call.data == {
        "email": "jane@example.com",
        "locale": "de-CH",
        "client_ip": "203.0.113.7",
        "user_agent": "TestBrowser/1.0",
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(202, json={"status": "accepted"}),
        httpx.Response(503, json={"error": "upstream_unavailable", "message": "down"}),
        httpx.Response(401, json={"error": "invalid_signature", "message": "bad"}),
        httpx.Response(500, text="oops"),
        httpx.ConnectError("refused"),
    ],
    ids=["accepted", "503", "401", "500", "unreachable"],
)
async def test_forgot_always_shows_the_same_page(
    browser: httpx.AsyncClient, relay: FakeRelay, reply: Reply
) -> None:
    token = await csrf_token(browser)
    baseline = await browser.post("/forgot", data={"csrf_token": token, "email": "a@example.com"})
    relay.queued["password_reset.requested"] = [reply]
    page = await browser.post("/forgot", data={"csrf_token": token, "email": "b@example.com"})
    assert page.status_code == baseline.status_code == 200
    assert page.text == baseline.text
    assert relay.types() == ["password_reset.requested"] * 2


@pytest.mark.anyio
async def test_forgot_rejects_what_is_not_an_address(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    token = await csrf_token(browser)
    page = await browser.post("/forgot", data={"csrf_token": token, "email": "not-an-address"})
    assert page.status_code == 422
    assert 'aria-invalid="true"' in page.text
    assert relay.calls == []


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/forgot", "/account/reset", "/signin"])
@pytest.mark.parametrize("token", [None, "", "forged-token-that-is-not-the-cookie-value"])
async def test_posts_without_the_csrf_token_are_refused(
    browser: httpx.AsyncClient, relay: FakeRelay, auth0: FakeAuth0, path: str, token: str | None
) -> None:
    await open_link(browser)
    await csrf_token(browser)
    relay.calls.clear()
    form = {
        "email": "jane@example.com",
        "password": "N3w-Passw0rd",
        "password_confirm": "N3w-Passw0rd",
    }
    if token is not None:
        form["csrf_token"] = token
    answer = await browser.post(path, data=form)
    assert answer.status_code == 403
    assert "came from another site" in answer.text
    assert relay.calls == []
    assert auth0.forms == []


@pytest.mark.anyio
async def test_csrf_without_a_cookie_is_refused(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    token = await csrf_token(browser)
    browser.cookies.clear()
    answer = await browser.post("/forgot", data={"csrf_token": token, "email": "a@example.com"})
    assert answer.status_code == 403
    assert relay.calls == []


# -- The link from the mail ------------------------------------------------------------


@pytest.mark.anyio
async def test_the_ticket_moves_from_the_url_into_a_cookie(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    landing = await browser.get(f"/account/reset?ticket={TICKET}")
    assert landing.status_code == 302
    assert landing.headers["location"] == "/account/reset"
    assert_reset_headers(landing)
    cookie = landing.headers["set-cookie"]
    assert cookie.startswith(f"reset_ticket={TICKET};")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "max-age=900", "path=/account/reset", "samesite=strict"} <= attributes
    assert relay.calls == []  # a mail scanner following the link causes nothing

    page = await browser.get("/account/reset")
    assert page.status_code == 200
    assert_reset_headers(page)
    assert TICKET not in page.text
    assert [(c.type, c.data) for c in relay.calls] == [
        ("password_reset.verify", {"ticket": TICKET})
    ]
    # The form: masked address, two new-password fields, policy hints, toggle, external JS.
    assert MASKED in page.text
    assert page.text.count('autocomplete="new-password"') == 2
    assert '<label for="password">' in page.text
    assert '<label for="password_confirm">' in page.text
    # The hints are the tenant's requirements from verify, not a list of the site's own.
    assert '<li data-check="min_length" data-min="10">At least 10 characters</li>' in page.text
    assert 'data-check="identical_characters" data-max="2"' in page.text
    assert 'data-check="max_length" data-max-bytes="72"' in page.text
    assert 'data-check="history" data-size="5"' in page.text
    assert "data-toggle" in page.text
    assert '<script src="/static/reset.js"' in page.text
    assert "<script>" not in page.text


@pytest.mark.anyio
async def test_the_ticket_cookie_is_secure_over_https(make_website: MakeWebsite) -> None:
    transport = httpx.ASGITransport(app=make_website())
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        landing = await client.get(f"/account/reset?ticket={TICKET}")
    assert "secure" in landing.headers["set-cookie"].lower()


@pytest.mark.anyio
async def test_a_malformed_ticket_is_not_stored(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    page = await browser.get("/account/reset?ticket=%3Cscript%3E")
    assert page.status_code == 400
    assert "This link is not valid" in page.text
    assert "reset_ticket" not in browser.cookies
    assert relay.calls == []


@pytest.mark.anyio
async def test_without_a_cookie_the_page_reloads_itself_once(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    # After a link in webmail, the browser holds back the SameSite=Strict cookie on the
    # redirect; the page reloads itself (same-site) once, then gives up.
    opening = await browser.get("/account/reset")
    assert opening.status_code == 200
    assert 'http-equiv="refresh" content="0; url=/account/reset?resume=1"' in opening.text
    assert_reset_headers(opening)
    missing = await browser.get("/account/reset?resume=1")
    assert missing.status_code == 400
    assert "couldn't find your reset link" in missing.text
    assert 'href="/forgot"' in missing.text
    assert relay.calls == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reason", "headline"),
    [
        ("expired", "This link has expired"),
        ("used", "This link has already been used"),
        ("revoked", "This link is no longer valid"),
        ("unknown", "This link is not valid"),
        ("something-new", "This link is not valid"),
    ],
)
async def test_verify_invalid_shows_the_reason(
    browser: httpx.AsyncClient, relay: FakeRelay, reason: str, headline: str
) -> None:
    relay.answer("password_reset.verify", 200, {"valid": False, "reason": reason})
    page = await open_link(browser)
    assert page.status_code == 200
    assert headline in page.text
    assert 'href="/forgot"' in page.text  # request a new one
    assert_reset_headers(page)
    assert "reset_ticket" not in browser.cookies


@pytest.mark.anyio
async def test_verify_while_resetrelay_is_busy(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    relay.answer("password_reset.verify", 503, {"error": "upstream_unavailable", "message": "x"})
    page = await open_link(browser)
    assert page.status_code == 503
    assert "Your link still works" in page.text
    assert browser.cookies["reset_ticket"] == TICKET


# -- Confirm ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_confirm_completed(browser: httpx.AsyncClient, relay: FakeRelay) -> None:
    await open_link(browser)
    page = await submit_password(browser)
    assert page.status_code == 200
    assert "Your password has been changed" in page.text
    assert 'href="/signin"' in page.text
    assert_reset_headers(page)
    assert relay.calls[-1].type == "password_reset.confirm"
    assert relay.calls[-1].data == {"ticket": TICKET, "new_password": "N3w-Passw0rd"}
    cleared = page.headers["set-cookie"]
    assert cleared.startswith("reset_ticket=")
    assert "path=/account/reset" in cleared.lower()
    assert "reset_ticket" not in browser.cookies


@pytest.mark.anyio
async def test_without_a_policy_from_verify_no_hints_are_made_up(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    body = {"valid": True, "expires_at": "2030-01-01T00:00:00Z", "email": MASKED, "locale": "en"}
    relay.answer("password_reset.verify", 200, body)
    page = await open_link(browser)
    assert page.status_code == 200
    assert "data-check=" not in page.text and "minlength" not in page.text


@pytest.mark.anyio
async def test_odd_requirement_items_are_dropped(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    policy = {"requirements": [7, {"rule": 3}, {"rule": "special", "min": "x"}]}
    body = {"valid": True, "expires_at": "2030-01-01T00:00:00Z", "email": MASKED}
    relay.answer("password_reset.verify", 200, {**body, "locale": "en", "policy": policy})
    page = await open_link(browser)
    assert '<li data-check="special">special</li>' in page.text
    assert page.text.count("data-check=") == 1


@pytest.mark.anyio
async def test_confirm_rejected_by_the_policy_shows_message_and_rule(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    await open_link(browser)
    relay.answer(
        "password_reset.confirm",
        422,
        {
            "error": "password_rejected",
            "message": "Password has previously been used",
            "rule": "history",
            "requirements": [
                {"rule": "history", "size": 5, "message": "Not one of your last 5 passwords"}
            ],
        },
    )
    page = await submit_password(browser)
    assert page.status_code == 422
    assert "Password has previously been used" in page.text
    assert 'data-rule="history"' in page.text
    assert "<code>history</code>" in page.text
    assert "You have used this password recently" in page.text
    assert '<li data-missed="history">Not one of your last 5 passwords</li>' in page.text
    assert MASKED in page.text  # the form is back, the ticket still usable
    assert 'autocomplete="new-password"' in page.text
    assert "N3w-Passw0rd" not in page.text  # passwords are never echoed
    assert browser.cookies["reset_ticket"] == TICKET
    assert relay.types()[-2:] == ["password_reset.confirm", "password_reset.verify"]


@pytest.mark.anyio
async def test_confirm_ticket_invalid(browser: httpx.AsyncClient, relay: FakeRelay) -> None:
    await open_link(browser)
    relay.answer(
        "password_reset.confirm",
        410,
        {"error": "ticket_invalid", "message": "The ticket was used.", "reason": "used"},
    )
    page = await submit_password(browser)
    assert page.status_code == 410
    assert "This link has already been used" in page.text
    assert 'href="/forgot"' in page.text
    assert "reset_ticket" not in browser.cookies


@pytest.mark.anyio
async def test_confirm_ticket_busy(browser: httpx.AsyncClient, relay: FakeRelay) -> None:
    await open_link(browser)
    relay.answer("password_reset.confirm", 409, {"error": "ticket_busy", "message": "busy"})
    page = await submit_password(browser)
    assert page.status_code == 409
    assert "already being completed" in page.text
    assert "try again" in page.text
    assert browser.cookies["reset_ticket"] == TICKET


@pytest.mark.anyio
@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(503, json={"error": "upstream_unavailable", "message": "Auth0 is down."}),
        httpx.ReadTimeout("slow"),
    ],
    ids=["503", "timeout"],
)
async def test_confirm_upstream_unavailable(
    browser: httpx.AsyncClient, relay: FakeRelay, reply: Reply
) -> None:
    await open_link(browser)
    relay.queued["password_reset.confirm"] = [reply]
    page = await submit_password(browser)
    assert page.status_code == 503
    assert "The service is busy" in page.text
    assert "Your link still works" in page.text
    assert 'href="/account/reset"' in page.text
    assert browser.cookies["reset_ticket"] == TICKET


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": "invalid_payload", "message": "data.ticket is required."}),
        (401, {"error": "invalid_signature", "message": "bad"}),
        (422, {"error": "unknown_event_type", "message": "?"}),
        (500, {}),
        (200, {"status": "something else"}),
    ],
)
async def test_confirm_anything_else_is_a_generic_error(
    browser: httpx.AsyncClient, relay: FakeRelay, status: int, body: dict[str, Any]
) -> None:
    await open_link(browser)
    relay.answer("password_reset.confirm", status, body)
    page = await submit_password(browser)
    assert page.status_code == 502
    assert "Something went wrong" in page.text
    if "message" in body:
        assert body["message"] not in page.text  # resetrelay's words are for the logs
    assert_reset_headers(page)


@pytest.mark.anyio
async def test_mismatched_passwords_never_reach_resetrelay(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    await open_link(browser)
    page = await submit_password(browser, "N3w-Passw0rd", "N3w-Passw0rX")
    assert page.status_code == 422
    assert "The two passwords don&#39;t match." in page.text
    assert MASKED in page.text
    assert "password_reset.confirm" not in relay.types()


@pytest.mark.anyio
async def test_an_empty_password_never_reaches_resetrelay(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    await open_link(browser)
    page = await submit_password(browser, "", "")
    assert page.status_code == 422
    assert "Enter a new password." in page.text
    assert "password_reset.confirm" not in relay.types()


@pytest.mark.anyio
async def test_confirm_without_the_ticket_cookie(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    page = await submit_password(browser)
    assert page.status_code == 400
    assert "couldn't find your reset link" in page.text
    assert relay.calls == []


# -- Sign in ---------------------------------------------------------------------------


async def sign_in(browser: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    await browser.get("/signin")
    form = {"csrf_token": browser.cookies["csrftoken"], "email": email, "password": password}
    return await browser.post("/signin", data=form)


@pytest.mark.anyio
async def test_sign_in(browser: httpx.AsyncClient, auth0: FakeAuth0) -> None:
    page = await sign_in(browser, "jane@example.com", "S3cret!pass")
    assert page.status_code == 200
    assert "Signed in as <strong>jane@example.com</strong>" in page.text
    assert auth0.forms == [
        {
            "grant_type": "password",
            "username": "jane@example.com",
            "password": "S3cret!pass",
            "client_id": "emulator-client",
            "scope": "openid profile email",
        }
    ]


@pytest.mark.anyio
async def test_sign_in_wrong_password(browser: httpx.AsyncClient) -> None:
    page = await sign_in(browser, "jane@example.com", "nope")
    assert page.status_code == 401
    assert "Wrong email or password." in page.text
    assert 'value="jane@example.com"' in page.text
    assert "nope" not in page.text


@pytest.mark.anyio
async def test_sign_in_blocked(browser: httpx.AsyncClient, auth0: FakeAuth0) -> None:
    auth0.status = 429
    page = await sign_in(browser, "jane@example.com", "S3cret!pass")
    assert page.status_code == 429
    assert "Blocked." in page.text


@pytest.mark.anyio
async def test_sign_in_without_auth0(make_website: MakeWebsite) -> None:
    app = make_website(auth0_url=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        page = await sign_in(client, "jane@example.com", "S3cret!pass")
    assert page.status_code == 503
    assert "not connected to Auth0" in page.text


@pytest.mark.anyio
async def test_every_html_page_carries_the_security_headers(browser: httpx.AsyncClient) -> None:
    pages = [await browser.get(path) for path in ("/", "/signin", "/forgot", "/nowhere")]
    pages.append(await browser.post("/forgot", data={"email": "x@example.com"}))  # no CSRF
    pages.append(await open_link(browser))  # the reset page, with a ticket near
    for page in pages:
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"
        assert_tight_csp(page)


# -- The mail's code ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_redeemed_code_puts_its_ticket_in_the_reset_cookie(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    verify_body = FakeRelay.default("password_reset.verify").json()
    relay.answer("password_reset.redeem_code", 200, {**verify_body, "ticket": TICKET})
    sent = await browser.get("/forgot")
    assert 'href="/account/code"' in sent.text
    page = await browser.get("/account/code")
    assert page.status_code == 200 and 'autocomplete="one-time-code"' in page.text
    token = browser.cookies["csrftoken"]
    form = {"csrf_token": token, "email": " jane@example.com ", "code": "k7qm-3xpa"}
    answer = await browser.post("/account/code", data=form)
    assert answer.status_code == 303 and answer.headers["location"] == "/account/reset"
    assert TICKET not in answer.headers["location"]
    assert answer.headers["set-cookie"].startswith(f"reset_ticket={TICKET};")
    reset = await browser.get("/account/reset")
    assert reset.status_code == 200 and MASKED in reset.text and TICKET not in reset.text
    assert [(c.type, c.data) for c in relay.calls] == [
        ("password_reset.redeem_code", {"email": "jane@example.com", "code": "k7qm-3xpa"}),
        ("password_reset.verify", {"ticket": TICKET}),
    ]


@pytest.mark.anyio
async def test_a_code_that_does_not_work_gets_one_message(
    browser: httpx.AsyncClient, relay: FakeRelay
) -> None:
    relay.answer("password_reset.redeem_code", 200, {"valid": False, "reason": "unknown"})
    relay.answer(
        "password_reset.redeem_code",
        400,
        {"error": "invalid_payload", "message": "data.code: is not a code."},
    )
    token = await csrf_token(browser)
    unknown = await browser.post(
        "/account/code", data={"csrf_token": token, "email": "jane@example.com", "code": "AAAA"}
    )
    assert unknown.status_code == 422
    assert (
        "That code doesn&#39;t work" in unknown.text
        and "reset_ticket" not in unknown.headers.get("set-cookie", "")
    )
    malformed = await browser.post(
        "/account/code", data={"csrf_token": token, "email": "jane@example.com", "code": "0O1I"}
    )
    assert malformed.status_code == 422 and "isn&#39;t a code" in malformed.text
    # Shapes the page refuses itself never reach resetrelay; nor does a form without CSRF.
    for data in (
        {"csrf_token": token, "email": "nope", "code": "K7QM-3XPA"},
        {"csrf_token": token, "email": "jane@example.com", "code": "K" * 17},
        {"email": "jane@example.com", "code": "K7QM-3XPA"},
    ):
        refused = await browser.post("/account/code", data=data)
        assert refused.status_code in (403, 422)
    assert len(relay.calls) == 2
