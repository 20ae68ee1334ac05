"""Building the emulator app, and running it (`resetrelay emulate-auth0`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette

from devkit.emulator import connections, inspection, management, oauth
from devkit.emulator.logstream import LogStream
from devkit.emulator.policy import PasswordPolicy
from devkit.emulator.ratelimit import RateLimitConfig
from devkit.emulator.state import EmulatorState
from devkit.emulator.users import DEMO_USERS, load_users

__all__ = ["create_emulator", "run_emulator", "serve"]

DEFAULT_CLIENT_ID = "emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-secret"  # noqa: S105 - a well-known local value


def create_emulator(
    *,
    domain: str = "auth0.emulator.local",
    users: list[dict[str, Any]] | None = None,
    users_file: str | None = None,
    policy: PasswordPolicy | None = None,
    rate_limit: RateLimitConfig | None = None,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    clock: Callable[[], float] = time.time,
    token_lifetime: int = 86400,
    revocation_available: bool = True,
    log_stream_url: str | None = None,
    log_stream_token: str | None = None,
    log_format: str = "jsonlines",
    scopes: list[str] | tuple[str, ...] | None = None,
    plan: str | None = None,
    revocation_delay: float = 0.0,
    omit_failure_user_id: bool = False,
    log_pii: str = "off",
    scp_for_api_password: bool = False,
) -> Starlette:
    """An ASGI app that answers like Auth0's token endpoint and Management API.

    `users` and the users in `users_file` are both loaded; `rate_limit` is off
    by default (`RateLimitConfig.free_plan()` is 2/s, burst 2);
    `scopes` is the client grant (default: every scope the service uses);
    `plan` one of `state.PLANS` (default "enterprise", or "professional" with
    `revocation_available=False`): below Enterprise the session and refresh-token
    endpoints answer as a plan without them (see `management`);
    `revocation_delay` seconds pass (on `clock`) before a 202 revocation shows.
    Log-stream options (devkit.emulator.logstream): `log_format`,
    `omit_failure_user_id`, `log_pii` (`off`, `mask`, `hash`) and
    `scp_for_api_password`. The state is `app.state.emulator`.
    """
    specs = list(users or [])
    if users_file:
        specs += load_users(users_file)
    logs = LogStream(
        url=log_stream_url,
        token=log_stream_token,
        content_format=log_format,
        client_id=client_id,
        clock=clock,
        omit_failure_user_id=omit_failure_user_id,
        pii=log_pii,
        scp_for_api_password=scp_for_api_password,
    )
    state = EmulatorState(
        domain=domain,
        users=specs,
        policy=policy or PasswordPolicy(),
        rate_limit=rate_limit,
        client_id=client_id,
        client_secret=client_secret,
        clock=clock,
        token_lifetime=token_lifetime,
        revocation_available=revocation_available,
        logs=logs,
        plan=plan,
        revocation_delay=revocation_delay,
    )
    app = Starlette(
        routes=[*connections.routes, *oauth.routes, *management.routes, *inspection.routes]
    )
    app.state.emulator = state
    if scopes is not None:
        connections.directory(app).grant(tuple(scopes))
    return app


def serve(
    host: str,
    port: int,
    users_file: str | None = None,
    rate_limit: RateLimitConfig | None = None,
    **options: Any,
) -> None:
    """Run the emulator with uvicorn until interrupted (demo users by default)."""
    import uvicorn

    app = create_emulator(
        users_file=users_file or str(DEMO_USERS), rate_limit=rate_limit, **options
    )
    state: EmulatorState = app.state.emulator
    print(
        f"Auth0 emulator (NOT Auth0: a local stand-in) on http://{host}:{port}/\n"
        f"  domain={state.domain} client_id={state.client_id} "
        f"client_secret={state.client_secret}",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


def run_emulator(
    host: str, port: int, users_file: str | None, rate_limit_per_second: float | None
) -> None:
    """What `resetrelay emulate-auth0` calls."""
    limit = None
    if rate_limit_per_second:
        limit = RateLimitConfig(rate_limit_per_second, max(1, int(rate_limit_per_second)))
    serve(host, port, users_file, limit)
