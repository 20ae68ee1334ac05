"""`GET /preview/mail/{template}?locale=…`: any mail rendered with sample data.
Mounted only when DEV_MODE=true; in production the route does not exist."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from hooks.errors import HookError
from mail.preview import sample_context

if TYPE_CHECKING:
    from resetrelay.runtime import Runtime

# A mail as its reader sees it: inline styles and remote images, nothing else; no
# script, no forms, no framing. The sample link looks like a ticket link, so the page
# is never cached and never sends a Referer.
CSP = (
    "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


async def preview_mail(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    template = request.path_params["template"]
    if template not in runtime.renderer.TEMPLATES:
        raise HookError(404, "not_found", f"No mail template {template[:32]!r}.")
    locale = request.query_params.get("locale")
    rendered = runtime.renderer.render(template, locale, sample_context(template))
    if request.query_params.get("part") == "text":
        return PlainTextResponse(rendered.text, headers=HEADERS)
    return HTMLResponse(rendered.html, headers=HEADERS)
