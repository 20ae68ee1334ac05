"""A local Auth0 emulator for development, the demo and tests. It is NOT Auth0.

It answers the calls resetrelay makes with the shapes and messages Auth0
documents (docs/auth0.md) so the service can be run and tested without a
tenant: client-credentials tokens (`/oauth/token`, which also takes the
password grant so the demo website can sign in), users-by-email, user GET and
PATCH under a configurable password policy (Auth0's levels or the Flexible Password
Policy, shown on `GET /api/v2/connections`; a PATCH enforces only strength unless
`PasswordPolicy(patch_enforces="none" | "all")` says otherwise), user blocks, session and
refresh-token revocation, and invalidate-remember-browser. It can rate limit
like Auth0's token bucket (`x-ratelimit-*`, Free-plan preset 2/s burst 2),
inject faults, and stream log events (`scp`, `sapi`, `limit_wc`, injected
ones) to a log-stream URL.

Where Auth0's exact wording is unconfirmed the emulator's is a guess; never
use it to argue how Auth0 behaves. Passwords are held only as scrypt hashes.

    app = create_emulator(users_file="devkit/demo_users.json")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth0")
    state = app.state.emulator        # requests(), inspect_user(), add_fault(), ...

Modules: `app` (building and running), `oauth`, `management` (the endpoints),
`inspection` (`/__emulator/*`), `state`, `users`, `policy`, `ratelimit`,
`logstream`.
"""

from __future__ import annotations

from devkit.emulator.app import create_emulator, run_emulator, serve
from devkit.emulator.policy import PasswordPolicy
from devkit.emulator.ratelimit import RateLimitConfig
from devkit.emulator.state import EmulatorState, Fault
from devkit.emulator.users import DEMO_USERS

__all__ = [
    "DEMO_USERS",
    "EmulatorState",
    "Fault",
    "PasswordPolicy",
    "RateLimitConfig",
    "create_emulator",
    "run_emulator",
    "serve",
]
