"""Who ran an operator command, and the pseudonym of the person it acted on.

The audit trail must outlive an erasure request (`resetrelay forget`), so it never
holds an address or a user id: a subject is a keyed HMAC of `email:<address>` or
`user:<user_id>` under a key derived from SECRET_KEY. Given the address or id,
`inspect` can find its lines; given the trail alone, nobody can recover who it was.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass

from resetrelay.keys import derive, keyed_digest


@dataclass(frozen=True)
class Operator:
    actor: str
    host: str

    @classmethod
    def current(cls) -> Operator:
        """The login running the command (RESETRELAY_OPERATOR overrides it, e.g. for
        `heroku run`, where every dyno's user is the same) and this machine's name."""
        actor = os.environ.get("RESETRELAY_OPERATOR", "").strip()
        if not actor:
            try:
                actor = getpass.getuser()
            except (KeyError, OSError):
                actor = f"uid:{os.getuid()}"
        return cls(actor=actor[:128], host=socket.gethostname()[:255])


class Subjects:
    def __init__(self, secret_key: str) -> None:
        self._key = derive(secret_key, "audit-subject")

    def email(self, address: str) -> str:
        return "email:" + keyed_digest(self._key, address.strip().lower())

    def user(self, user_id: str) -> str:
        return "user:" + keyed_digest(self._key, user_id)
