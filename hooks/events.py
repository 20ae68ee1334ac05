"""The website's event payloads, parsed and validated with pydantic.

pydantic-core parses JSON and checks shape in one pass, with a recursion
limit, so hostile bodies (deep nesting, wrong types, huge numbers) end as a
`400 invalid_payload` whose message names the offending field.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hooks.errors import HookError, invalid_payload
from mail.message import addr_spec
from resetrelay.reset.codes import normalise

REQUESTED: Final = "password_reset.requested"
VERIFY: Final = "password_reset.verify"
CONFIRM: Final = "password_reset.confirm"
REDEEM_CODE: Final = "password_reset.redeem_code"
DISPUTE: Final = "password_reset.dispute"


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Envelope(_Model):
    type: Annotated[str, Field(min_length=1, max_length=128)]
    timestamp: Annotated[str, Field(max_length=64)] | None = None
    data: dict[str, Any]


class Requested(_Model):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    locale: (
        Annotated[str, Field(max_length=35, pattern=r"^[A-Za-z]{2,8}([_-][A-Za-z0-9]{1,8})*$")]
        | None
    ) = None
    client_ip: Annotated[str, Field(max_length=64)] | None = None
    user_agent: Annotated[str, Field(max_length=1024)] | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        # Shape only; whether it exists is Auth0's business, asked after we answer.
        # Exactly one addr-spec (email-validator): a list (`a@x,evil@y`), a group or
        # a display name is refused here, as is anything the mail could not carry.
        # Auth0 stores database users' addresses lower-cased; lookups are case-sensitive.
        value = value.strip().lower()
        try:
            return addr_spec(value)
        except ValueError:
            raise ValueError("is not an email address") from None

    @field_validator("client_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return normal_ip(value)


def normal_ip(value: str) -> str:
    """An IP address's one spelling (`ipaddress`'s), or ValueError. A dotted IPv4
    address, the common case, goes through the C library's strict parser (four
    decimal octets, no leading zeros: what `ipaddress` accepts), about a tenth of
    `ipaddress`'s cost; anything it refuses gets `ipaddress`'s own verdict.

    An IPv6 zone (`fe80::1%eth0`) is dropped: it names an interface of the
    website's own host, not the client, and `ipaddress` takes any text there,
    control characters and `\x00` included. Kept, it would make one client many
    rate-limit keys, and a NUL in a stored payload makes PostgreSQL refuse every
    `payload->>'field'` read of that row (the operators' per-person queries)."""
    value = value.strip()
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, value))
    except (OSError, ValueError):
        address = ipaddress.ip_address(value)
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
            address = ipaddress.IPv6Address(address.packed)
        return str(address)


class Verify(_Model):
    ticket: Annotated[str, Field(min_length=1, max_length=512)]


class Confirm(_Model):
    ticket: Annotated[str, Field(min_length=1, max_length=512)]
    new_password: Annotated[str, Field(min_length=1, max_length=1024)]


class RedeemCode(_Model):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    # Room for spaces and a dash around the 8 characters; longer is not a code.
    code: Annotated[str, Field(min_length=1, max_length=32)]

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return Requested._email(value)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        # Shape only (8 of the mail's symbols, dash and case free): says nothing of
        # any account, so a typo gets its own clear 400 instead of a wasted attempt.
        code = normalise(value)
        if code is None:
            raise ValueError("is not a code: 8 letters and digits, as in the mail")
        return code


class Dispute(_Model):
    # 43 characters: base64url of an HMAC-SHA256 without padding. Anything else
    # cannot be a dispute token and is refused here, naming the field.
    token: Annotated[str, Field(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]+$")]
    confirm: bool


class _RequestedEvent(_Model):
    """A whole `requested` event in one model: the hot path's body is validated in one
    pass of pydantic-core over the bytes, instead of building the envelope's `data` as
    Python objects and validating those again (`parse`)."""

    type: Literal["password_reset.requested"]
    timestamp: Annotated[str, Field(max_length=64)] | None = None
    data: Requested


DATA_MODELS: Final[dict[str, type[_Model]]] = {
    REQUESTED: Requested,
    VERIFY: Verify,
    CONFIRM: Confirm,
    REDEEM_CODE: RedeemCode,
    DISPUTE: Dispute,
}


def _message(exc: ValidationError, prefix: str) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    if error["type"] == "json_invalid":
        return "The body is not valid JSON."
    if error["type"] == "model_type" and not error["loc"]:
        return "The body must be a JSON object."
    field = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
    detail = str(error["msg"]).removeprefix("Value error, ")
    return f"{field or 'body'}: {detail}."


def parse(body: bytes) -> tuple[str, _Model]:
    """Return `(type, data)` or raise a HookError naming what is wrong."""
    try:
        # The common case first, in one pass. Its rules are the envelope's and
        # Requested's together, so whatever it refuses is refused below as well, by
        # the two-step path that names the offending field (and handles other types).
        return REQUESTED, _RequestedEvent.model_validate_json(body).data
    except ValidationError:
        pass
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_payload(_message(exc, "")) from None
    model = DATA_MODELS.get(envelope.type)
    if model is None:
        raise HookError(
            422, "unknown_event_type", f"Event type {envelope.type[:64]!r} is not handled."
        )
    try:
        return envelope.type, model.model_validate(envelope.data)
    except ValidationError as exc:
        raise invalid_payload(_message(exc, "data")) from None
