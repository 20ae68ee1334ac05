"""hooks.openapi.document: a well-formed OpenAPI 3 document that lists exactly the
routes (and methods) of hooks.app."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.routing import Route

from hooks.app import create_app
from hooks.openapi import document
from resetrelay import __version__
from resetrelay.settings import Settings

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def doc() -> dict[str, Any]:
    return document()


def test_header_and_json_round_trip(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.")
    assert doc["info"] == {"title": "resetrelay", "version": __version__}
    assert json.loads(json.dumps(doc)) == doc


def test_paths_and_methods_are_those_of_the_app(
    doc: dict[str, Any], settings_for: Callable[..., Settings]
) -> None:
    app = create_app(settings_for())  # no lifespan: the runtime is never built
    routes = {
        r.path: {m.lower() for m in r.methods or ()} - {"head"}
        for r in app.routes
        if isinstance(r, Route)
    }
    documented = {path: set(item) for path, item in doc["paths"].items()}
    assert documented == routes


def test_preview_is_dev_only_and_undocumented(
    doc: dict[str, Any], settings_for: Callable[..., Settings]
) -> None:
    app = create_app(settings_for(DEV_MODE="true"))
    extra = {r.path for r in app.routes if isinstance(r, Route)} - set(doc["paths"])
    assert extra == {"/preview/mail/{template}"}


def test_every_operation_is_well_formed(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    for item in doc["paths"].values():
        for method, operation in item.items():
            assert method in METHODS
            assert operation["summary"]
            assert operation["responses"]
            for status, response in operation["responses"].items():
                assert status.isdigit() and 100 <= int(status) < 600
                assert response["description"]
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema["required"] == ["error", "message"]
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(schemes)
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in {"header", "query", "path", "cookie"}


def test_website_events_are_the_three_reset_steps(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/hooks/website"]["post"]["requestBody"]
    variants = body["content"]["application/json"]["schema"]["oneOf"]
    types = [v["properties"]["type"]["const"] for v in variants]
    assert types == [
        "password_reset.requested",
        "password_reset.verify",
        "password_reset.confirm",
    ]
    headers = {p["name"] for p in doc["paths"]["/hooks/website"]["post"]["parameters"]}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
