"""A reference point: the least an honest receiver of signed events does.

Plain ASGI; the Standard Webhooks signature checked by the official
`standardwebhooks` library; the event id and body written to SQLite (WAL,
synchronous=NORMAL, as the service's) with a primary key on the id, so a
replay stores nothing twice; one transaction per request, committed before the
202. No middleware, metrics, request ids, field validation or job queue. Served
with the same uvicorn settings as the echo and the service (bench/run.py).

Its database file and secret come from the environment (`MINIMAL_DB`,
`WEBHOOK_SECRET`).
"""

from __future__ import annotations

import os
import sqlite3

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send

_HOOK = Webhook(os.environ["WEBHOOK_SECRET"])
_DB = sqlite3.connect(os.environ["MINIMAL_DB"], isolation_level=None, check_same_thread=False)
_DB.execute("PRAGMA journal_mode=WAL")
_DB.execute("PRAGMA synchronous=NORMAL")
_DB.execute("CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, body BLOB NOT NULL)")

_JSON = [(b"content-type", b"application/json")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        _HOOK.verify(body, headers)
    except WebhookVerificationError:
        status, answer = 401, b'{"error":"invalid_signature"}'
    else:
        _DB.execute(
            "INSERT OR IGNORE INTO events (id, body) VALUES (?, ?)", (headers["webhook-id"], body)
        )
        status, answer = 202, b'{"status":"accepted"}'
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON, (b"content-length", str(len(answer)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer})
