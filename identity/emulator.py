"""A local Auth0 emulator for development, the demo and tests. It is NOT Auth0.

It answers the Management API calls resetrelay makes with the shapes and
messages Auth0 documents (shared/AUTH0.md): client-credentials tokens,
users-by-email, user PATCH under a configurable password policy, user blocks,
session revocation, and a password grant so the demo can sign in. It can rate
limit like a token bucket with `x-ratelimit-*` headers (Free-plan preset 2/s),
inject faults, and stream its log events (`scp`, `sapi`, `limit_wc`, injected
`pwd_leak`) to a log-stream URL as JSON Lines, a JSON array or objects.

Inspection for tests lives under `/__emulator/`; the same state is
`app.state.emulator` in-process.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from identity.policy import PasswordPolicy, check_password, hash_password

DEMO_USERS = Path(__file__).with_name("demo_users.json")
DB_CONNECTION = "Username-Password-Authentication"
FAILED_LOGINS_BEFORE_BLOCK = 10


@dataclass(frozen=True)
class RateLimitConfig:
    per_second: float
    burst: int

    @classmethod
    def free_plan(cls) -> RateLimitConfig:
        return cls(per_second=2.0, burst=2)


@dataclass
class EmulatedUser:
    user_id: str
    email: str
    name: str
    connection: str | None  # database connection, None for social-only
    social: str | None
    locale: str | None
    password_hash: str | None
    email_verified: bool = False
    blocked: bool = False
    failed_logins: int = 0
    history: list[str] = field(default_factory=list)
    password_changes: int = 0
    sessions_revoked: int = 0
    refresh_tokens_revoked: int = 0
    remember_browser_invalidated: int = 0
    last_password_reset: str | None = None
    updated_at: str = ""

    def public(self) -> dict[str, Any]:
        identities = []
        if self.connection:
            identities.append(
                {
                    "connection": self.connection,
                    "provider": "auth0",
                    "user_id": self.user_id.partition("|")[2],
                    "isSocial": False,
                }
            )
        if self.social:
            identities.append(
                {
                    "connection": self.social,
                    "provider": self.social,
                    "user_id": self.user_id.partition("|")[2],
                    "isSocial": True,
                }
            )
        body: dict[str, Any] = {
            "user_id": self.user_id,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "identities": identities,
            "updated_at": self.updated_at,
            "user_metadata": {"locale": self.locale} if self.locale else {},
        }
        if self.last_password_reset:
            body["last_password_reset"] = self.last_password_reset
        return body

    def inspect(self) -> dict[str, Any]:
        return {
            **self.public(),
            "blocked": self.blocked,
            "password_changes": self.password_changes,
            "sessions_revoked": self.sessions_revoked,
            "refresh_tokens_revoked": self.refresh_tokens_revoked,
            "remember_browser_invalidated": self.remember_browser_invalidated,
        }


def user_from_spec(spec: dict[str, Any]) -> EmulatedUser:
    social = spec.get("social")
    has_password = bool(spec.get("password"))
    default_id = f"{'auth0' if has_password or not social else social}|{uuid.uuid4().hex[:24]}"
    return EmulatedUser(
        user_id=spec.get("user_id") or default_id,
        email=spec["email"],
        name=spec.get("name") or spec["email"].partition("@")[0],
        connection=(spec.get("connection") or DB_CONNECTION) if has_password else None,
        social=social,
        locale=spec.get("locale"),
        password_hash=hash_password(spec["password"]) if has_password else None,
        email_verified=bool(spec.get("email_verified", False)),
        blocked=bool(spec.get("blocked", False)),
    )


@dataclass
class Fault:
    path_prefix: str
    status: int
    times: int
    method: str | None = None


class EmulatorState:
    def __init__(
        self,
        *,
        domain: str,
        users: list[dict[str, Any]],
        policy: PasswordPolicy,
        rate_limit: RateLimitConfig | None,
        client_id: str,
        client_secret: str,
        clock: Callable[[], float],
        log_stream_url: str | None,
        log_stream_token: str | None,
        log_format: str,
        revocation_available: bool,
    ) -> None:
        self.domain = domain
        self.policy = policy
        self.rate_limit = rate_limit
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.users: dict[str, EmulatedUser] = {}
        for spec in users:
            self.add_user(spec)
        self.tokens: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.bucket = float(rate_limit.burst) if rate_limit else 0.0
        self.bucket_at = clock()
        self.log_stream_url = log_stream_url
        self.log_stream_token = log_stream_token
        self.log_format = log_format
        self.revocation_available = revocation_available
        self.logs_sent: list[dict[str, Any]] = []

    def add_user(self, spec: dict[str, Any]) -> EmulatedUser:
        user = user_from_spec(spec)
        self.users[user.user_id] = user
        return user

    def take_token(self) -> tuple[bool, dict[str, str]]:
        """Token bucket over the Management API; returns (allowed, x-ratelimit-* headers)."""
        if self.rate_limit is None:
            return True, {}
        now = self.clock()
        rate, burst = self.rate_limit.per_second, self.rate_limit.burst
        self.bucket = min(burst, self.bucket + (now - self.bucket_at) * rate)
        self.bucket_at = now
        allowed = self.bucket >= 1
        if allowed:
            self.bucket -= 1
        reset = int(now + max(0.0, (1 - self.bucket) / rate)) + 1
        return allowed, {
            "x-ratelimit-limit": str(burst),
            "x-ratelimit-remaining": str(int(self.bucket)),
            "x-ratelimit-reset": str(reset),
        }

    def fault_for(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if (
                fault.times > 0
                and path.startswith(fault.path_prefix)
                and (fault.method is None or fault.method == method)
            ):
                fault.times -= 1
                return fault
        return None

    def log_event(self, kind: str, user: EmulatedUser | None, description: str) -> dict[str, Any]:
        log_id = f"900{int(self.clock() * 1000)}{secrets.token_hex(6)}"
        data: dict[str, Any] = {
            "date": datetime.fromtimestamp(self.clock(), UTC).isoformat().replace("+00:00", "Z"),
            "type": kind,
            "description": description,
            "client_id": self.client_id,
            "client_name": "resetrelay emulator",
            "ip": "127.0.0.1",
            "log_id": log_id,
        }
        if user is not None:
            data.update(
                user_id=user.user_id,
                user_name=user.email,
                connection=user.connection or user.social,
                strategy="auth0",
                strategy_type="database",
            )
        return {"log_id": log_id, "data": data}

    async def stream(self, events: list[dict[str, Any]]) -> None:
        """POST log events to the configured stream, as Auth0's custom webhook does."""
        if not self.log_stream_url or not events:
            return
        if self.log_format == "array":
            body = json.dumps(events)
        elif self.log_format == "object":
            body = json.dumps(events[0]) if len(events) == 1 else json.dumps({"logs": events})
        else:
            body = "\n".join(json.dumps(e) for e in events)
        headers = {"content-type": "application/json"}
        if self.log_stream_token:
            headers["authorization"] = self.log_stream_token
        self.logs_sent.extend(events)
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(3):  # Auth0 tries up to three times
                try:
                    answer = await client.post(self.log_stream_url, content=body, headers=headers)
                except httpx.HTTPError:
                    await anyio.sleep(0.2)
                    continue
                if answer.status_code < 300:
                    return
                await anyio.sleep(0.2)


def _error(status: int, message: str, error: str, code: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"statusCode": status, "error": error, "message": message}
    if code:
        body["errorCode"] = code
    return JSONResponse(body, status_code=status)


def _now_iso(state: EmulatorState) -> str:
    return datetime.fromtimestamp(state.clock(), UTC).isoformat().replace("+00:00", "Z")


def create_emulator(
    *,
    domain: str = "auth0.emulator.local",
    users: list[dict[str, Any]] | None = None,
    users_file: str | None = None,
    policy: PasswordPolicy | None = None,
    rate_limit: RateLimitConfig | None = None,
    client_id: str = "emulator-client",
    client_secret: str = "emulator-secret",  # noqa: S107 - a well-known local value
    clock: Callable[[], float] = time.time,
    log_stream_url: str | None = None,
    log_stream_token: str | None = None,
    log_format: str = "jsonlines",
    revocation_available: bool = True,
) -> Starlette:
    specs = list(users or [])
    if users_file:
        specs += json.loads(Path(users_file).read_text())
    state = EmulatorState(
        domain=domain,
        users=specs,
        policy=policy or PasswordPolicy(),
        rate_limit=rate_limit,
        client_id=client_id,
        client_secret=client_secret,
        clock=clock,
        log_stream_url=log_stream_url,
        log_stream_token=log_stream_token,
        log_format=log_format,
        revocation_available=revocation_available,
    )

    async def body_of(request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").startswith("application/x-www-form"):
            return dict(await request.form())
        try:
            data = await request.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    async def token(request: Request) -> Response:
        body = await body_of(request)
        fault = state.fault_for(request.method, request.url.path)
        if fault:
            return _error(fault.status, "Injected fault", "Fault")
        if body.get("grant_type") == "password":
            return sign_in(body)
        if body.get("grant_type") != "client_credentials":
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Grant type not allowed."},
                403,
            )
        if body.get("client_id") != client_id or body.get("client_secret") != client_secret:
            return JSONResponse(
                {"error": "access_denied", "error_description": "Unauthorized"}, 401
            )
        if body.get("audience") != f"https://{domain}/api/v2/":
            return JSONResponse(
                {
                    "error": "access_denied",
                    "error_description": "Service not enabled within domain: "
                    f"{body.get('audience')}",
                },
                403,
            )
        value = secrets.token_urlsafe(32)
        state.tokens.add(value)
        state.requests.append(
            {"method": "POST", "path": "/oauth/token", "json": {"grant_type": "client_credentials"}}
        )
        return JSONResponse(
            {
                "access_token": value,
                "expires_in": 86400,
                "scope": "read:users update:users delete:sessions delete:refresh_tokens",
                "token_type": "Bearer",
            }
        )

    def sign_in(body: dict[str, Any]) -> Response:
        email = str(body.get("username", "")).lower()
        user = next((u for u in state.users.values() if u.email == email and u.password_hash), None)
        if user is not None and user.blocked:
            return JSONResponse(
                {
                    "error": "too_many_attempts",
                    "error_description": "Your account has been blocked after multiple consecutive "
                    "login attempts.",
                },
                429,
            )
        if user is None or not check_password(
            str(body.get("password", "")), user.password_hash or ""
        ):
            if user is not None:
                user.failed_logins += 1
                if user.failed_logins >= FAILED_LOGINS_BEFORE_BLOCK:
                    user.blocked = True
                    event = state.log_event("limit_wc", user, "Blocked account")
                    return JSONResponse(
                        {"error": "invalid_grant", "error_description": "Wrong email or password."},
                        403,
                        background=BackgroundTask(state.stream, [event]),
                    )
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Wrong email or password."}, 403
            )
        user.failed_logins = 0
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(24),
                "id_token": "emulated",
                "token_type": "Bearer",
                "expires_in": 86400,
                "user": {"user_id": user.user_id, "email": user.email},
            }
        )

    def api(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def wrapped(request: Request) -> Response:
            raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
            entry: dict[str, Any] = {
                "method": request.method,
                "path": request.url.path,
                "raw_path": raw,
                "query": str(request.url.query),
            }
            if request.method in ("POST", "PATCH"):
                payload = await body_of(request)
                entry["json"] = {
                    k: ("[redacted]" if k == "password" else v) for k, v in payload.items()
                }
                entry["has_password"] = "password" in payload
            state.requests.append(entry)
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in state.tokens:
                return _error(401, "Invalid token", "Unauthorized")
            allowed, headers = state.take_token()
            if not allowed:
                response: Response = _error(
                    429, "Global limit has been reached", "Too Many Requests", "too_many_requests"
                )
            elif fault := state.fault_for(request.method, request.url.path):
                response = _error(
                    fault.status,
                    "Injected fault",
                    "Too Many Requests" if fault.status == 429 else "Service Error",
                    "too_many_requests" if fault.status == 429 else None,
                )
                if fault.status == 429:
                    headers["x-ratelimit-reset"] = str(int(state.clock()) + 1)
            else:
                response = await handler(request)
            response.headers.update(headers)
            return response

        return wrapped

    def find(user_id: str) -> EmulatedUser | None:
        return state.users.get(user_id)

    async def users_by_email(request: Request) -> Response:
        email = request.query_params.get("email", "")
        return JSONResponse([u.public() for u in state.users.values() if u.email == email])

    async def user(request: Request) -> Response:
        target = find(request.path_params["user_id"])
        if target is None:
            return _error(404, "The user does not exist.", "Not Found", "inexistent_user")
        if request.method == "GET":
            return JSONResponse(target.public())
        body = await body_of(request)
        if "password" in body and ({"email_verified", "email", "username"} & set(body)):
            other = next(k for k in ("email_verified", "email", "username") if k in body)
            return _error(
                400,
                f"Cannot update password and {other} simultaneously",
                "Bad Request",
                "invalid_body",
            )
        background = None
        if "password" in body:
            if body.get("connection") != target.connection:
                return _error(400, "Invalid connection for this user", "Bad Request")
            rejection = state.policy.check(
                str(body["password"]), email=target.email, name=target.name, history=target.history
            )
            if rejection:
                return _error(400, rejection, "Bad Request", "invalid_body")
            if target.password_hash:
                target.history.append(target.password_hash)
            target.password_hash = hash_password(str(body["password"]))
            target.password_changes += 1
            target.last_password_reset = _now_iso(state)
            target.failed_logins = 0
            background = BackgroundTask(
                state.stream,
                [
                    state.log_event("sapi", target, "Update a User"),
                    state.log_event("scp", target, "Change password"),
                ],
            )
        if "email_verified" in body:
            target.email_verified = bool(body["email_verified"])
        target.updated_at = _now_iso(state)
        return JSONResponse(target.public(), background=background)

    async def user_blocks(request: Request) -> Response:
        target = find(request.path_params["user_id"])
        if target is None:
            return _error(404, "The user does not exist.", "Not Found", "inexistent_user")
        if request.method == "GET":
            return JSONResponse(
                {
                    "blocked_for": [{"identifier": target.email, "ip": "127.0.0.1"}]
                    if target.blocked
                    else []
                }
            )
        target.blocked = False
        target.failed_logins = 0
        return Response(status_code=204)

    async def revoke(request: Request) -> Response:
        target = find(request.path_params["user_id"])
        if not state.revocation_available:
            return _error(403, "Insufficient plan", "Forbidden", "operation_not_supported")
        if target is None:
            return _error(404, "The user does not exist.", "Not Found", "inexistent_user")
        kind = request.url.path.rsplit("/", 1)[1]
        if kind in ("revoke-access", "sessions"):
            target.sessions_revoked += 1
        if kind in ("revoke-access", "refresh-tokens"):
            target.refresh_tokens_revoked += 1
        return Response(status_code=202)

    async def remember_browser(request: Request) -> Response:
        target = find(request.path_params["user_id"])
        if target is None:
            return _error(404, "The user does not exist.", "Not Found", "inexistent_user")
        target.remember_browser_invalidated += 1
        return Response(status_code=204)

    # -- inspection (tests, demo) ---------------------------------------------------

    async def inspect_requests(request: Request) -> Response:
        if request.method == "DELETE":
            state.requests.clear()
            return Response(status_code=204)
        return JSONResponse({"requests": state.requests})

    async def inspect_user(request: Request) -> Response:
        target = find(request.path_params["user_id"])
        if target is None:
            return JSONResponse({"error": "not found"}, 404)
        return JSONResponse(target.inspect())

    async def add_user(request: Request) -> Response:
        return JSONResponse(state.add_user(await request.json()).public(), 201)

    async def block(request: Request) -> Response:
        target = find(request.path_params["user_id"])
        if target is None:
            return JSONResponse({"error": "not found"}, 404)
        target.blocked = True
        return JSONResponse(target.inspect())

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.faults.clear()
            return Response(status_code=204)
        spec = await request.json()
        state.faults.append(
            Fault(
                spec["path_prefix"],
                int(spec["status"]),
                int(spec.get("times", 1)),
                spec.get("method"),
            )
        )
        return JSONResponse({"faults": len(state.faults)}, 201)

    async def inject_log(request: Request) -> Response:
        spec = await request.json()
        target = find(spec.get("user_id", ""))
        event = state.log_event(spec["type"], target, spec.get("description", "injected"))
        if "date" in spec:
            event["data"]["date"] = spec["date"]
        await state.stream([event])
        return JSONResponse(event, 201)

    async def home(request: Request) -> Response:
        return PlainTextResponse(
            "resetrelay's Auth0 emulator: a local stand-in for development and tests. "
            "It is not Auth0.\n"
        )

    user_path = "/api/v2/users/{user_id}"
    routes = [
        Route("/", home),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/api/v2/users-by-email", api(users_by_email), methods=["GET"]),
        Route("/api/v2/users/{user_id}/revoke-access", api(revoke), methods=["POST"]),
        Route("/api/v2/users/{user_id}/sessions", api(revoke), methods=["DELETE"]),
        Route("/api/v2/users/{user_id}/refresh-tokens", api(revoke), methods=["DELETE"]),
        Route(
            "/api/v2/users/{user_id}/multifactor/actions/invalidate-remember-browser",
            api(remember_browser),
            methods=["POST"],
        ),
        Route(user_path, api(user), methods=["GET", "PATCH"]),
        Route("/api/v2/user-blocks/{user_id}", api(user_blocks), methods=["GET", "DELETE"]),
        Route("/__emulator/requests", inspect_requests, methods=["GET", "DELETE"]),
        Route("/__emulator/users", add_user, methods=["POST"]),
        Route("/__emulator/users/{user_id:path}", inspect_user, methods=["GET"]),
        Route("/__emulator/blocks/{user_id:path}", block, methods=["POST"]),
        Route("/__emulator/faults", faults, methods=["POST", "DELETE"]),
        Route("/__emulator/logs", inject_log, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = state
    return app


def run_emulator(
    host: str, port: int, users_file: str | None, rate_limit_per_second: float | None
) -> None:
    import uvicorn

    limit = None
    if rate_limit_per_second:
        limit = RateLimitConfig(rate_limit_per_second, max(1, int(rate_limit_per_second)))
    app = create_emulator(users_file=users_file or str(DEMO_USERS), rate_limit=limit)
    print(
        f"Auth0 emulator (not Auth0) on http://{host}:{port}/ "
        "client_id=emulator-client client_secret=emulator-secret",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
