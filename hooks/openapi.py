"""The OpenAPI document for the routes in docs/routes.md (tests keep it equal to the router)."""

from __future__ import annotations

from typing import Any

from resetrelay import __version__

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
        404: "not configured",
        409: "ticket_busy",
        410: "ticket_invalid",
        413: "payload_too_large",
        415: "unsupported_media_type",
        422: "unknown_event_type or password_rejected",
        503: "upstream_unavailable or storage_unavailable (Retry-After)",
    }
    return {str(code): _json(_ERROR, names[code]) for code in codes}


def _event(type_: str, data: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "data"],
        "properties": {
            "type": {"const": type_},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": {"type": "object", "required": required, "properties": data},
        },
    }


_STANDARD_WEBHOOK_HEADERS = [
    {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
]


def document() -> dict[str, Any]:
    string = {"type": "string"}
    website_body = {
        "oneOf": [
            _event(
                "password_reset.requested",
                {
                    "email": {"type": "string", "format": "email", "maxLength": 254},
                    "locale": string,
                    "client_ip": string,
                    "user_agent": string,
                },
                ["email"],
            ),
            _event("password_reset.verify", {"ticket": string}, ["ticket"]),
            _event(
                "password_reset.confirm",
                {"ticket": string, "new_password": string},
                ["ticket", "new_password"],
            ),
        ]
    }
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
                        "200": _json({"type": "object"}, "verify / confirm answer"),
                        "202": _json(
                            {"type": "object", "properties": {"status": string}},
                            "requested: accepted, whatever the address",
                        ),
                        **_errors(400, 401, 409, 410, 413, 415, 422, 503),
                    },
                }
            },
            "/hooks/auth0": {
                "post": {
                    "summary": "Auth0 custom-webhook log stream (JSON Lines, array or object)",
                    "security": [{"logStreamToken": []}],
                    "responses": {
                        "200": _json({"type": "object"}, "stored durably"),
                        **_errors(400, 401, 404, 413, 503),
                    },
                }
            },
            "/hooks/auth0/actions": {
                "post": {
                    "summary": "Events from Auth0 Actions (HS256 JWT bound to the body)",
                    "security": [{"actionJwt": []}],
                    "responses": {
                        "200": _json({"type": "object"}, "handled"),
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
                    "summary": "Prometheus text",
                    "responses": {"200": {"description": "metrics"}},
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
            }
        },
    }
