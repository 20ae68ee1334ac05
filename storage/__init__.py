"""Reset state in SQL: SQLite by default, PostgreSQL in production, one code path.

Modules: `models` (tables), `database` (engine and transactions), `inbound`
(webhook dedupe), `jobs` (durable queue), `tickets`, `ratelimits`, `outbox`.
Nothing here knows HTTP, SMTP or Auth0. Store functions take an open
`AsyncConnection`, so a caller can put several of them in one transaction.
"""
