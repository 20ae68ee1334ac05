"""The demo customer website: its own "forgot password" pages on top of resetrelay."""

from __future__ import annotations

from .app import create_website, sign_webhook

__all__ = ["create_website", "sign_webhook"]
