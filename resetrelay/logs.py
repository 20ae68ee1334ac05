"""JSON-line logs with a request id.

Log calls pass structured fields through `extra={"fields": {...}}`. Nothing
here redacts for the caller: the rule is that passwords, tickets, secrets and
whole addresses are never handed to a logger; `mask_email` is what a log line
(or the verify answer) may carry.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mail.errors import mask_address

request_id: ContextVar[str] = ContextVar("request_id", default="-")


def mask_email(address: str) -> str:
    """`jane.doe@example.com` -> `j***@example.com`: of the local part at most its first
    character (a letter or digit), the domain only when it is a plain domain, for any
    input (`mail.errors.mask_address`; `scrub_addresses` masks them inside a text)."""
    return mask_address(address)


def mask_url(url: str) -> str:
    """A URL without its password: `postgresql://u:***@host/db`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id.get(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


# Libraries whose INFO/DEBUG lines carry URLs, SQL parameters or mail content
# (httpx logs every request URL, so `users-by-email?email=` would leak addresses).
QUIET_LIBRARIES = (
    "httpx",
    "httpcore",
    "aiosqlite",
    "sqlalchemy",
    "aiosmtplib",
    "mail.log",
    "multipart",
)


def quiet_libraries() -> None:
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries()
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's access log prints raw paths and client addresses; ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True


_PROCESS = uuid.uuid4().hex[:12]
_SEQUENCE = itertools.count(1)


def new_request_id(incoming: str | None) -> str:
    """Honour Heroku's `X-Request-Id` when it looks like an id, else make one: unique,
    not secret (a random per-process prefix and a counter, cheaper than a UUID each)."""
    if incoming and 1 <= len(incoming) <= 200 and incoming.isascii() and incoming.isprintable():
        return incoming
    return f"{_PROCESS}-{next(_SEQUENCE):x}"
