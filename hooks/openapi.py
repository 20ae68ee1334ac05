"""The OpenAPI document for the routes in docs/routes.md (tests keep it equal to the router)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from hooks import events
from resetrelay import __version__
from resetrelay.breaches import SEEN_BANDS

_SUMMARY = ("received", "stored", "duplicates", "ignored", "malformed")

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    names = {
        400: "invalid_payload",
        401: "invalid_signature or unauthorized",
        403: "forbidden (not a loopback client, and METRICS_TOKEN is unset)",
        404: "not configured",
        409: "ticket_busy",
        410: "ticket_invalid",
        413: "payload_too_large",
        415: "unsupported_media_type",
        422: "unknown_event_type or password_rejected",
        503: "upstream_unavailable, service_misconfigured or storage_unavailable (Retry-After)",
    }
    return {str(code): _json(_ERROR, names[code]) for code in codes}


def _field(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic field schema as the contract states it: the same constraints, the
    optional `T | None` spelled as a nullable type, pydantic's titles left out."""
    schema = {k: v for k, v in schema.items() if k not in ("title", "default")}
    variants = schema.pop("anyOf", None)
    if variants:
        (value,) = [v for v in variants if v.get("type") != "null"]
        schema = {**value, **schema, "type": [value["type"], "null"]}
    return schema


def _model(model: type[BaseModel], **extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of one of hooks.events' models, exactly as strict as the server
    (`extra` adds what a validator checks beyond the field's constraints)."""
    source = model.model_json_schema()
    properties = {
        name: {**_field(schema), **extra.get(name, {})}
        for name, schema in source["properties"].items()
    }
    return {"type": "object", "required": source.get("required", []), "properties": properties}


def _event(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    envelope = _model(events.Envelope)["properties"]
    return {
        "type": "object",
        "required": ["type", "data"],
        "properties": {
            "type": {"const": type_},
            "timestamp": envelope["timestamp"],
            "data": data,
        },
    }


_STANDARD_WEBHOOK_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
        "description": "Unix seconds, within WEBHOOK_TOLERANCE_SECONDS of the server's clock",
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "Space-separated `v1,<base64 HMAC-SHA256>` entries (at most 16 read)",
    },
]
_REPLAYED = {
    "idempotent-replayed": {
        "description": "`true` when this is the first answer to this webhook-id, given again",
        "schema": {"const": "true"},
    }
}
_REASON = {"enum": ["expired", "used", "revoked", "unknown"]}
_COUNT = {"type": "integer", "minimum": 1}
# One password requirement (resetrelay.reset.policy): a stable code, its number where it
# has one, and a sentence in the ticket's language.
_REQUIREMENT = {
    "type": "object",
    "required": ["rule", "message"],
    "properties": {
        "rule": {
            "enum": [
                "min_length",
                "character_types",
                "lowercase",
                "uppercase",
                "number",
                "special",
                "identical_characters",
                "sequential_characters",
                "max_length",
                "dictionary",
                "user_info",
                "history",
                "strength",
                "breached",
                "unknown",
            ]
        },
        "min": {**_COUNT, "description": "min_length: characters; character_types: kinds of 4"},
        "max": {**_COUNT, "description": "identical or sequential characters in a row"},
        "max_bytes": {**_COUNT, "description": "max_length: UTF-8 bytes (72)"},
        "size": {**_COUNT, "description": "history: previous passwords remembered"},
        "message": {"type": "string"},
    },
}
_REQUIREMENTS = {"type": "array", "items": _REQUIREMENT}
_REJECTED = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"enum": ["unknown_event_type", "password_rejected"]},
        "message": {"type": "string"},
        "rule": {"enum": ["strength", "history", "dictionary", "user_info", "breached", "unknown"]},
        "seen": {
            "enum": list(SEEN_BANDS),
            "description": "breached: how often known breaches hold the password, as a band",
        },
        "requirements": {
            **_REQUIREMENTS,
            "description": "password_rejected: every requirement the password missed",
        },
    },
}
_STRING_ID = {"type": "string", "minLength": 1, "maxLength": 255}
# One Auth0 log event; items that do not fit are skipped and counted, not refused.
_LOG_ITEM = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "log_id": {**_STRING_ID, "description": "May sit inside `data` instead"},
        "data": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"type": "string", "minLength": 1, "maxLength": 64},
                "log_id": _STRING_ID,
                "date": {"type": "string", "format": "date-time"},
            },
        },
    },
}
_ACTION_EVENT = {
    "type": "object",
    "required": ["type", "user"],
    "properties": {
        "type": {"const": "post_change_password"},
        "user": {
            "type": "object",
            "description": "Auth0 marks `user_id` optional: with only `email`, the user "
            "is found by address in a job (202)",
            "anyOf": [{"required": ["user_id"]}, {"required": ["email"]}],
            "properties": {
                "user_id": _STRING_ID,
                "email": {"type": "string", "format": "email", "maxLength": 254},
            },
        },
    },
}


def document() -> dict[str, Any]:
    website_body = {
        "oneOf": [
            _event(
                events.REQUESTED,
                _model(
                    events.Requested,
                    email={"format": "email", "description": "Lower-cased before use"},
                    client_ip={"description": "An IPv4 or IPv6 address"},
                ),
            ),
            _event(events.VERIFY, _model(events.Verify)),
            _event(events.CONFIRM, _model(events.Confirm)),
            _event(
                events.REDEEM_CODE,
                _model(
                    events.RedeemCode,
                    email={"format": "email", "description": "Lower-cased before use"},
                    code={"description": "The mail's 8-character code; dash, case, spaces free"},
                ),
            ),
            _event(
                events.DISPUTE,
                _model(
                    events.Dispute,
                    confirm={"description": "false: what the page shows; true: dispute"},
                ),
            ),
        ]
    }
    website_200 = {
        "oneOf": [
            {
                "type": "object",
                "required": ["valid", "expires_at", "email", "locale"],
                "properties": {
                    "valid": {"const": True},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "email": {"type": "string", "description": "masked"},
                    "locale": {"type": "string"},
                    "policy": {
                        "type": "object",
                        "description": "the tenant's password policy, for the form's hints",
                        "required": ["requirements"],
                        "properties": {"requirements": _REQUIREMENTS},
                    },
                    "ticket": {
                        "type": "string",
                        "description": "redeem_code only: the ticket the code stands for, "
                        "for verify and confirm; keep it server-side",
                    },
                },
            },
            {
                "type": "object",
                "required": ["valid", "reason"],
                "properties": {"valid": {"const": False}, "reason": _REASON},
            },
            {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "completed"}},
            },
            {
                "type": "object",
                "description": "dispute, confirm false: the link works",
                "required": ["valid", "email", "changed_at", "locale"],
                "properties": {
                    "valid": {"const": True},
                    "email": {"type": "string", "description": "masked"},
                    "changed_at": {"type": "string", "format": "date-time"},
                    "locale": {"type": "string"},
                },
            },
            {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "disputed"}},
            },
        ]
    }
    count = {"type": "integer", "minimum": 0}
    return {
        "openapi": "3.1.0",
        "info": {"title": "resetrelay", "version": __version__},
        "paths": {
            "/hooks/website": {
                "post": {
                    "summary": "Signed events from the website (Standard Webhooks v1)",
                    "parameters": _STANDARD_WEBHOOK_HEADERS,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": website_body}},
                    },
                    "responses": {
                        "200": {
                            **_json(website_200, "verify / confirm / redeem_code / dispute answer"),
                            "headers": _REPLAYED,
                        },
                        "202": {
                            **_json(
                                {
                                    "type": "object",
                                    "required": ["status"],
                                    "properties": {"status": {"const": "accepted"}},
                                },
                                "requested: accepted, whatever the address",
                            ),
                            "headers": _REPLAYED,
                        },
                        **_errors(400, 401, 409, 410, 413, 415, 503),
                        "422": _json(_REJECTED, "unknown_event_type or password_rejected"),
                    },
                }
            },
            "/hooks/auth0": {
                "post": {
                    "summary": "Auth0 custom-webhook log stream (JSON Lines, array or object)",
                    "security": [{"logStreamToken": []}],
                    "requestBody": {
                        "required": True,
                        "description": "Up to 5 MiB, whatever its content-type: JSON Lines "
                        "(one item per line, the documented format), an array of items, or "
                        "one item. Items that do not fit are counted as malformed; a body "
                        "in which nothing parses as JSON is refused with 400.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        _LOG_ITEM,
                                        {"type": "array", "items": _LOG_ITEM},
                                    ]
                                }
                            },
                            "application/x-ndjson": {
                                "schema": {
                                    "type": "string",
                                    "description": "JSON Lines: one log item per line",
                                }
                            },
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": list(_SUMMARY),
                                "properties": dict.fromkeys(_SUMMARY, count),
                            },
                            "stored durably",
                        ),
                        **_errors(400, 401, 404, 413, 503),
                    },
                }
            },
            "/hooks/auth0/actions": {
                "post": {
                    "summary": "Events from Auth0 Actions (HS256 JWT bound to the body)",
                    "security": [{"actionJwt": []}],
                    "requestBody": {
                        "required": True,
                        "description": "At most 64 KiB; the token's `body_sha256` claim "
                        "binds it to these bytes",
                        "content": {"application/json": {"schema": _ACTION_EVENT}},
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["status", "voided"],
                                "properties": {"status": {"const": "ok"}, "voided": count},
                            },
                            "handled",
                        ),
                        "202": _json(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"const": "accepted"}},
                            },
                            "only an address: the user is found and the tickets voided by a job",
                        ),
                        **_errors(400, 401, 404, 413, 415, 422, 503),
                    },
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "running"}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness (database answers)",
                    "responses": {"200": {"description": "ready"}, **_errors(503)},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus text (loopback only unless METRICS_TOKEN is set)",
                    "security": [{}, {"metricsToken": []}],
                    "responses": {
                        "200": {
                            "description": "metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(401, 403),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI"}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "logStreamToken": {"type": "apiKey", "in": "header", "name": "Authorization"},
                "actionJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "metricsToken": {"type": "http", "scheme": "bearer"},
            }
        },
    }
