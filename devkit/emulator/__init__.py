"""A local Auth0 emulator for development, the demo and tests. It is NOT Auth0.

It answers the calls resetrelay makes with the shapes and messages Auth0
documents (docs/auth0.md) so the service can be run and tested without a
tenant: client-credentials tokens (`/oauth/token`, which also takes the
password grant so the demo website can sign in), users-by-email, user GET and
PATCH under a configurable password policy (Auth0's levels or the Flexible Password
Policy, shown on `GET /api/v2/connections`; a PATCH enforces only strength unless
`PasswordPolicy(patch_enforces="none" | "all")` says otherwise), user blocks, session and
refresh-token revocation (taking effect after `revocation_delay`, as Auth0's
asynchronous revocation does), device credentials, and
invalidate-remember-browser. Each endpoint checks its scopes against the token's
(`scopes=` narrows the grant: 403 `insufficient_scope` as the Management API
specification writes it), and `plan=` below "enterprise" removes the session
and refresh-token endpoints (their answer there is a guess: see `management`).
It can rate limit
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
`logstream`, `connections`.

How it differs from Auth0
=========================

The one list of every known difference, each with the source it follows or could
not confirm. docs/auth0.md ("Confirm it on your tenant in five minutes") says how
a tenant owner settles the unconfirmed ones with curl. The requests resetrelay
sends are checked against the official SDK in tests/identity/test_contract.py;
this list is about the emulator's answers.

Modelled after the sources (issue 16):

- Scopes: granted per client and checked per endpoint, a missing one answered
  403 "Insufficient scope; expected: ..." as the Management API specification
  writes it (the OpenAPI file once vendored in github.com/auth0/go-auth0,
  management/api/openapi.yaml, e.g. DELETE /users/{user_id}/sessions).
- A plan setting: the session and refresh-token endpoints exist on Enterprise
  plans only (auth0.com/docs/manage-users/sessions/manage-user-sessions-with-auth0-
  management-api, auth0.com/docs/secure/tokens/manage-refresh-tokens-with-auth0-
  management-api).
- The legacy policy levels as Auth0 defines them (fair: lower + upper + digit;
  good: three of lower, upper, digit, special `!@#$%^&*`; excellent: good and no
  more than two identical characters in a row) and the Flexible Password Policy's
  `options.password_options` (auth0.com/docs/authenticate/database-connections/
  password-strength, .../flexible-password-policy).
- The legacy policy's silent truncation beyond 72 bytes (flexible-password-policy
  page: "Silently truncates passwords beyond maximum length").
- What a password PATCH enforces, as an option: every rule, strength only (Auth0's
  docs) or none (community.auth0.com/t/password-policy-not-honored-during-password-
  change-with-management-api/149990). Which one a tenant does is unconfirmed.
- Brute-force blocks per IP and account, not per account (auth0.com/docs/secure/
  attack-protection/brute-force-protection).
- Asynchronous revocation: sessions and refresh tokens end some time after the 202
  (the specification above: "Session deletion request accepted.", "Refresh token
  deletion request accepted."; how long it takes is undocumented).
- Failure logs whose `user_id` is missing and whose `user_name` is masked or
  hashed (github.com/auth0/auth0-log-schemas: neither is a required field).
- A social primary account with a linked database identity (auth0.com/docs/
  manage-users/user-accounts/user-account-linking).

Still different (the source could not confirm Auth0's behaviour, or the emulator
simplifies on purpose):

- The "not on this plan" answer (403, "This feature is not available for your
  plan", `insufficient_plan`) is invented: what a tenant without the plan answers
  is undocumented.
- The Management API strings of PasswordHistoryError, PasswordDictionaryError and
  PasswordNoUserInfoError are guesses; only "PasswordStrengthError: Password is
  too weak" is shown in a source (community.auth0.com/t/79241). Other validation
  messages ("Payload validation error: ...", "The user does not exist.") copy
  Auth0's style, not confirmed strings.
- The dictionary holds about forty passwords; Auth0's has 10,000 (100,000 under
  the Flexible Password Policy) (password-options page).
- A password PATCH always logs `sapi` and `scp`; whether Auth0 logs `scp` for a
  Management API change is unconfirmed. No Actions run at all, so whether a PATCH
  fires the post-change-password Action cannot be seen here (unconfirmed).
- A password PATCH neither ends sessions nor lifts brute-force blocks (both
  unconfirmed on Auth0; resetrelay does both explicitly).
- revoke-access ignores `session_id` and `preserve_refresh_tokens` (both in the
  official definition) and always revokes everything.
- invalidate-remember-browser answers 204 for every user; whether Auth0 answers
  differently for a user without MFA is unconfirmed.
- Log streams: the JSON Object format's `{"logs": [...]}` wrapper and its single
  object are guesses (Auth0 documents JSON Lines and JSON Array). Batch size,
  retry spacing (0.2 s here) and the `log_id` format are undocumented; events carry
  a subset of Auth0's fields (no `user_agent`, `details`, `connection_id`,
  `hostname`).
- Rate limits: one token bucket for the whole Management API; Auth0 has separate
  limits per endpoint group (user reads, user writes), a token-endpoint limit and
  an M2M token quota, and `Retry-After` only on quota answers
  (auth0.com/docs/troubleshoot/customer-support/operational-policies/rate-limit-
  policy).
- Tokens are opaque random strings, not RS256 JWTs with `scope` and
  `permissions` claims; the audience is compared exactly.
- The password grant (for the demo website only) needs neither the grant enabled
  on the application nor a `realm` or default directory, as Auth0 does; its
  blocked answer (429 `too_many_attempts`) and wrong-password answer (403
  `invalid_grant`) follow the Authentication API's docs, but the wording is not
  confirmed.
- A user's `blocked` attribute (PATCH `{"blocked": true}`) refuses the password
  grant with 401 `unauthorized` / "user is blocked" once the password is right (a
  wrong password still answers 403 and counts toward brute force); the status and
  wording follow what Auth0 is reported to answer, unconfirmed in its docs. It is
  independent of brute-force blocks: DELETE `user-blocks` does not lift it, and a
  password change does not either (only PATCH `blocked: false`).
- Users carry a subset of Auth0's user fields; a changed email's `email_verified`
  becomes false unless the PATCH sets it (the stricter reading; undocumented).
- Only the endpoints resetrelay and `resetrelay check` use exist; any other path
  answers 404 where Auth0 would answer it.
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
