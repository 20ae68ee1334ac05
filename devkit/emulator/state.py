"""Everything the emulator knows: users, issued tokens, the request log, queued
faults and the rate-limit bucket. Tests in-process read and steer it through
`app.state.emulator`; over HTTP the same methods sit under `/__emulator/`."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from devkit.emulator.logstream import LogStream, iso
from devkit.emulator.policy import PasswordPolicy
from devkit.emulator.ratelimit import RateLimitConfig, TokenBucket
from devkit.emulator.users import DEFAULT_IP, EmulatedUser, user_from_spec

__all__ = ["PLANS", "EmulatorState", "Fault", "redact"]

# Auth0's plans, smallest first. The user session and refresh-token endpoints
# (`revoke-access`, `DELETE .../sessions`, `DELETE .../refresh-tokens`) are documented
# for Enterprise plans only (auth0.com/docs/secure/tokens/manage-refresh-tokens-with-
# auth0-management-api, and the companion page on user sessions); device credentials
# exist on every plan.
PLANS: Final = ("free", "essentials", "professional", "enterprise")
ENTERPRISE_ONLY: Final = frozenset({"revoke-access", "sessions", "refresh-tokens"})
SECRET_FIELDS: Final = frozenset({"password", "client_secret", "access_token", "refresh_token"})


def redact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: ("[redacted]" if k in SECRET_FIELDS else v) for k, v in body.items()}


@dataclass
class Fault:
    """The next `times` requests under `path_prefix` (and `method`, if set) answer `status`.
    For 429s, `reset_after` sets `x-ratelimit-reset` (seconds from now) and
    `retry_after` a `Retry-After` header."""

    path_prefix: str
    status: int
    times: int = 1
    method: str | None = None
    reset_after: float | None = 1.0
    retry_after: float | None = None

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Fault:
        def seconds(name: str, default: float | None) -> float | None:
            value = spec.get(name, default)
            return None if value is None else float(value)

        method = spec.get("method")
        return cls(
            path_prefix=str(spec["path_prefix"]),
            status=int(spec["status"]),
            times=int(spec.get("times", 1)),
            method=str(method).upper() if method else None,
            reset_after=seconds("reset_after", 1.0),
            retry_after=seconds("retry_after", None),
        )

    def headers(self, now: float) -> dict[str, str]:
        found: dict[str, str] = {}
        if self.status == 429 and self.reset_after is not None:
            found["x-ratelimit-reset"] = str(math.ceil(now + self.reset_after))
        if self.retry_after is not None:
            found["retry-after"] = str(math.ceil(self.retry_after))
        return found


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
        token_lifetime: int,
        revocation_available: bool,
        logs: LogStream,
        plan: str | None = None,
        revocation_delay: float = 0.0,
    ) -> None:
        self.domain = domain
        self.audience = f"https://{domain}/api/v2/"
        self.policy = policy
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.token_lifetime = token_lifetime
        # `plan` wins; without it `revocation_available=False` stands for a plan below
        # Enterprise (the older switch, kept for callers that use it).
        if plan is not None and plan not in PLANS:
            raise ValueError(f"plan must be one of {', '.join(PLANS)}")
        self.plan = plan or ("enterprise" if revocation_available else "professional")
        # Auth0 ends sessions and refresh tokens asynchronously after answering 202:
        # revocations take effect this many seconds (emulator clock) after the call.
        self.revocation_delay = revocation_delay
        self.pending_revocations: list[tuple[float, str, bool, bool]] = []
        self.device_credentials: dict[str, dict[str, Any]] = {}
        # Database connections that are switched off for every application: a password
        # PATCH of their users is refused (not a policy rejection).
        self.disabled_connections: set[str] = set()
        self.logs = logs
        self.bucket = TokenBucket(rate_limit, clock) if rate_limit else None
        self.users: dict[str, EmulatedUser] = {}
        self.tokens: dict[str, float] = {}  # access token -> expiry (Unix seconds)
        self.token_requests = 0  # client-credentials grants answered 200
        self.request_log: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        hashes: dict[str, str] = {}  # one scrypt per distinct password of the file
        for spec in users:
            self.add_user(spec, hashes)

    def __repr__(self) -> str:
        return f"EmulatorState(domain={self.domain!r}, users={len(self.users)})"

    # -- plan -----------------------------------------------------------------------

    @property
    def revocation_available(self) -> bool:
        return self.plan == "enterprise"

    @revocation_available.setter
    def revocation_available(self, value: bool) -> None:
        self.plan = "enterprise" if value else "professional"

    def has_endpoint(self, name: str) -> bool:
        return name not in ENTERPRISE_ONLY or self.plan == "enterprise"

    # -- sessions and refresh tokens --------------------------------------------------

    def add_refresh_token(self, user_id: str, client_id: str = "website-client") -> str:
        """A refresh token of `user_id`, listed as a device credential; its id."""
        credential_id = f"dcr_{secrets.token_hex(8)}"
        self.device_credentials[credential_id] = {
            "id": credential_id,
            "device_name": "emulated device",
            "device_id": secrets.token_hex(8),
            "type": "refresh_token",
            "user_id": user_id,
            "client_id": client_id,
        }
        return credential_id

    def refresh_tokens_of(self, user_id: str) -> list[dict[str, Any]]:
        return [
            c
            for c in self.device_credentials.values()
            if c["user_id"] == user_id and c["type"] == "refresh_token"
        ]

    def schedule_revocation(self, user_id: str, *, sessions: bool, refresh_tokens: bool) -> None:
        self.pending_revocations.append(
            (self.clock() + self.revocation_delay, user_id, sessions, refresh_tokens)
        )
        self.settle_revocations()

    def settle_revocations(self) -> None:
        """Apply the revocations whose time has come."""
        now = self.clock()
        due = [p for p in self.pending_revocations if p[0] <= now]
        self.pending_revocations = [p for p in self.pending_revocations if p[0] > now]
        for _, user_id, sessions, refresh_tokens in due:
            user = self.users.get(user_id)
            if user is None:
                continue
            if sessions:
                user.sessions_revoked += 1
            if refresh_tokens:
                user.refresh_tokens_revoked += 1
                for credential in self.refresh_tokens_of(user_id):
                    del self.device_credentials[credential["id"]]

    def now_iso(self) -> str:
        return iso(self.clock())

    # -- users ----------------------------------------------------------------------

    def add_user(self, spec: dict[str, Any], hashes: dict[str, str] | None = None) -> EmulatedUser:
        user = user_from_spec(spec, self.now_iso(), hashes)
        self.users[user.user_id] = user
        return user

    def user(self, user_id: str) -> EmulatedUser | None:
        return self.users.get(user_id)

    def users_with_email(self, email: str) -> list[EmulatedUser]:
        return [u for u in self.users.values() if u.email == email]  # case-sensitive, as Auth0

    def inspect_user(self, user_id: str) -> dict[str, Any] | None:
        self.settle_revocations()
        user = self.users.get(user_id)
        if user is None:
            return None
        seen = user.inspect()
        seen["refresh_tokens"] = len(self.refresh_tokens_of(user_id))
        seen["revocations_pending"] = sum(1 for p in self.pending_revocations if p[1] == user_id)
        return seen

    def block(self, user_id: str, ip: str = DEFAULT_IP) -> dict[str, Any] | None:
        """A brute-force block of `ip` for this user, as after too many failed sign-ins."""
        user = self.users.get(user_id)
        if user is None:
            return None
        user.block(ip)
        return user.inspect()

    # -- tokens ---------------------------------------------------------------------

    def issue_token(self) -> str:
        value = secrets.token_urlsafe(32)
        self.tokens[value] = self.clock() + self.token_lifetime
        self.token_requests += 1
        return value

    def token_problem(self, authorization: str) -> str | None:
        """None for a good bearer token, else Auth0's 401 message."""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return "Missing authentication"
        expires = self.tokens.get(value.strip())
        if expires is None:
            return "Invalid token"
        if self.clock() >= expires:
            return "Expired token received for JSON Web Token validation"
        return None

    def revoke_tokens(self) -> None:
        """Forget every issued token (a rotated signing key): the next call gets a 401."""
        self.tokens.clear()

    # -- request log ----------------------------------------------------------------

    def record(self, method: str, path: str, raw_path: str, query: str, body: Any) -> None:
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "raw_path": raw_path,
            "query": query,
        }
        if isinstance(body, dict):
            entry["json"] = redact(body)
            entry["has_password"] = "password" in body
        self.request_log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        return list(self.request_log)

    def reset(self) -> None:
        """Clear the request log (users, tokens and faults stay)."""
        self.request_log.clear()

    # -- faults ---------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if (
                fault.times > 0
                and path.startswith(fault.path_prefix)
                and fault.method in (None, method)
            ):
                fault.times -= 1
                return fault
        return None
