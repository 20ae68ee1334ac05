"""Courtesy mails (COURTESY_MAILS): a word, by mail, to an address that asked for a
reset it cannot have.

    none    nothing is sent (the default)
    social  an address whose account signs in only through a social or other
            provider hears which one, and that there is no password to reset here
    all     also an address Auth0 has no user for hears that there is no account

Decided by the request's job (`Requests.handle`), after the 202: the answer, its
headers and its timing are the same for every address and every mode.

Who gets which mail:
- `social`: Auth0 has users for the address, and none of them has a database
  identity in any connection. A user with a password in another connection gets
  nothing: "no password here" would mislead, and "no account" would be false.
  The mail names the providers of the users' identities (`PROVIDER_NAMES`);
  providers we have no name for get a neutral wording.
- `unknown`: Auth0 has no user at all for the address, and the address is not
  obviously undeliverable (`undeliverable`). The mail says only that there is
  no account with this address here: nothing about any other address or site.

Throttled like reset mails, and then some. The request was counted against
RATE_LIMIT_PER_EMAIL before the lookup (reset.limits), exactly as a reset mail's
request is, so one address gets at most that many mails of any kind. An unknown
address, though, is whatever the requester typed, and many addresses reach one
inbox (`jane+1@`, `j.ane@`, `JANE@`): every courtesy mail is also counted per
inbox (`mailbox`), with the same limit, before it is queued.

The mails go through the outbox like every mail, with no ticket and so no reset
link; their only link is SIGNIN_URL, from the settings, when it is set.
"""

from __future__ import annotations

import contextlib
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any, Final, Literal

from sqlalchemy import Connection

from identity.users import Auth0User
from mail.message import addr_spec
from resetrelay import courier
from resetrelay.logs import mask_email
from resetrelay.metrics import Metrics
from resetrelay.reset.limits import RequestLimits
from resetrelay.settings import Settings

log = logging.getLogger("resetrelay.courtesy")

Kind = Literal["social", "unknown"]  # each is also the name of its mail's template
KINDS: Final[tuple[Kind, ...]] = ("social", "unknown")

# Auth0's `identities[].provider` of the common social connections, as people know
# them. Any other provider (enterprise, passwordless, a custom social connection) is
# not named: the mail then speaks of "another service".
PROVIDER_NAMES: Final = {
    "google-oauth2": "Google",
    "apple": "Apple",
    "github": "GitHub",
    "windowslive": "Microsoft",
    "facebook": "Facebook",
    "linkedin": "LinkedIn",
}

# Domains that never take mail: RFC 2606's examples (example.com, .org and .net
# publish a null MX, RFC 7505). The special-use names (.test, .invalid, localhost,
# ...) never get this far: `addr_spec` refuses them at the door.
_NO_MAIL_DOMAINS: Final = ("example", "example.com", "example.net", "example.org")
# Local parts that name a mailbox nobody reads (a sender of automatic mail).
_UNREAD_LOCAL_PARTS: Final = frozenset(
    {"noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply"}
    | {"mailer-daemon"}
)
# Where a subaddress starts (`jane+news@`, `jane-news@`, `jane=news@`): cut for the
# throttle's key only, where merging two addresses just makes the limit stricter.
_SUBADDRESS = re.compile(r"[+=-]")


@dataclass(frozen=True)
class Courtesy:
    """One courtesy mail, decided but not yet queued."""

    kind: Kind
    recipient: str
    locale: str
    context: dict[str, Any]


def kind_for(mode: str, users: Sequence[Auth0User]) -> Kind | None:
    """Which courtesy mail (if any) the mode gives an address whose users-by-email
    lookup found `users` and no database user of ours."""
    if mode == "none":
        return None
    if not users:
        return "unknown" if mode == "all" else None
    # Social-only: no password anywhere, and at least one identity to speak of.
    if all(user.providers and not user.has_password for user in users):
        return "social"
    return None


def provider_names(users: Sequence[Auth0User]) -> list[str]:
    """The named providers of `users`, each once, in Auth0's order; unknown ones left
    out (the mail says "another service" when none is left)."""
    names: dict[str, None] = {}
    for user in users:
        for provider in user.providers:
            if provider in PROVIDER_NAMES:
                names.setdefault(PROVIDER_NAMES[provider])
    return list(names)


def undeliverable(address: str, mail_from: str) -> bool:
    """True for an address no person reads mail at: a domain that takes no mail, an
    automatic sender's mailbox, or our own sender (no mail loops). Only these; there
    is no DNS lookup, so a domain without mail servers is still tried (and its mail
    ends `dead`)."""
    local, _, domain = address.casefold().rpartition("@")
    domain = domain.rstrip(".")
    if any(domain == d or domain.endswith("." + d) for d in _NO_MAIL_DOMAINS):
        return True
    if local in _UNREAD_LOCAL_PARTS or local.partition("+")[0] in _UNREAD_LOCAL_PARTS:
        return True
    return address.casefold() == parseaddr(mail_from)[1].casefold()


def mailbox(address: str) -> str:
    """The inbox `address` most likely reaches, for the courtesy throttle's key: case
    and Unicode width folded, the subaddress cut, dots in the local part dropped (as
    Gmail does), googlemail.com taken as gmail.com, the domain in IDNA form. Over-
    merging costs only a stricter limit; under-merging would let one inbox be flooded
    under many spellings."""
    local, _, domain = unicodedata.normalize("NFKC", address).casefold().rpartition("@")
    local = _SUBADDRESS.split(local, maxsplit=1)[0].replace(".", "") or local
    domain = domain.rstrip(".")
    with contextlib.suppress(UnicodeError):  # a name IDNA 2003 cannot spell stays as is
        domain = domain.encode("idna").decode("ascii")
    if domain == "googlemail.com":
        domain = "gmail.com"
    return f"{local}@{domain}"


class CourtesyMails:
    def __init__(self, settings: Settings, metrics: Metrics, limits: RequestLimits) -> None:
        self._settings = settings
        self._metrics = metrics
        self._limits = limits

    def plan(
        self, users: Sequence[Auth0User], email: str, asked_locale: str | None
    ) -> Courtesy | None:
        """The courtesy mail for a request that found no database user of ours, or None.
        `email` is the address as asked for (and as counted against the limits)."""
        kind = kind_for(self._settings.courtesy_mails, users)
        if kind is None:
            return None
        try:
            address = addr_spec(email)  # the door checked it already; the rule is one
        except ValueError:
            return None
        if kind == "unknown" and undeliverable(address, self._settings.mail_from):
            # Nobody would read it: not sent, counted, and said without the address.
            self._metrics.courtesy_mails.labels(kind, "undeliverable").inc()
            log.info(
                "courtesy mail not sent: undeliverable address",
                extra={"fields": {"kind": kind, "user": mask_email(address)}},
            )
            return None
        context: dict[str, Any] = {"signin_url": self._settings.signin_url}
        locale = asked_locale
        if kind == "social":
            context["providers"] = provider_names(users)
            locale = locale or next((u.locale for u in users if u.locale), None)
        return Courtesy(kind, address, locale or self._settings.default_locale, context)

    def queue_sync(self, conn: Connection, courtesy: Courtesy, *, now: datetime) -> bool:
        """Count the mail against its inbox's limit and, if admitted, queue it, in the
        caller's transaction (the job's completion commits with it). False when the
        inbox had its share: nothing is queued."""
        if not self._limits.courtesy_admitted_sync(conn, mailbox(courtesy.recipient), now=now):
            return False
        courier.queue_sync(
            conn,
            template=courtesy.kind,
            recipient=courtesy.recipient,
            locale=courtesy.locale,
            context=courtesy.context,
            message_id=courier.new_message_id(self._settings.mail_from),
            now=now,
        )
        return True

    def counted(self, courtesy: Courtesy, *, queued: bool) -> None:
        """Metrics and a log line, once the transaction of `queue_sync` committed."""
        fields = {"kind": courtesy.kind, "user": mask_email(courtesy.recipient)}
        if queued:
            self._metrics.courtesy_mails.labels(courtesy.kind, "queued").inc()
            self._metrics.mails.labels("queued").inc()
            log.info("courtesy mail queued", extra={"fields": fields})
        else:
            self._metrics.courtesy_mails.labels(courtesy.kind, "throttled").inc()
            log.info("courtesy mail not sent: the inbox had its share", extra={"fields": fields})
