"""Auth0, as resetrelay talks to it.

`client.Auth0Client` (the Management API calls) · `errors` (the one exception
tree callers see) · `users.Auth0User` · `token` (the cached client-credentials
token) · `retrying` (tenacity retries inside a deadline; httpx errors mapped) ·
`answers` (reading error bodies, policy rules, rate-limit headers) ·
`connections` (the database connection, whose `options` hold the password policy) ·
`emulator` (a local stand-in for development and tests; it is NOT Auth0).
"""
