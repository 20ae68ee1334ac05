""" "This wasn't me" in a real browser, against `resetrelay demo` as `make run` runs it.

A reset completed through the website → the "password changed" mail's dispute link
→ the dispute page shows what changed → "Secure my account" → the account is locked:
signing in with the password just set is refused → a fresh reset mail arrives.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from devkit.browser import DEMO_EMAIL, NEW_PASSWORD, Demo, run_demo
from tests.browser.conftest import Shots

pytestmark = pytest.mark.browser

RESET_LINK = "/account/reset?ticket="
DISPUTE_LINK = "/account/dispute?token="


@pytest.fixture
def demo() -> Iterator[Demo]:
    with run_demo() as running:
        yield running


def test_dispute_story(demo: Demo, page: Page, shots: Shots) -> None:
    site = demo.urls.website

    # 1. A completed reset (the forgot form, the mail's link, a good password).
    page.goto(f"{site}/forgot")
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    first = demo.wait_for_mail(
        lambda m: DEMO_EMAIL in m["to"] and any(RESET_LINK in u for u in m["links"]), "reset mail"
    )
    page.goto(next(u for u in first["links"] if RESET_LINK in u))
    page.locator("#password").fill(NEW_PASSWORD)
    page.locator("#password_confirm").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("heading", name="Your password has been changed")).to_be_visible()

    # 2. The "password changed" mail carries the dispute link.
    changed = demo.wait_for_mail(
        lambda m: DEMO_EMAIL in m["to"] and any(DISPUTE_LINK in u for u in m["links"]),
        "password-changed mail with a dispute link",
    )
    link = next(u for u in changed["links"] if DISPUTE_LINK in u)
    assert link.startswith(f"{site}{DISPUTE_LINK}")

    # 3. The dispute page: what changed, one button.
    page.goto(link)
    expect(page.get_by_role("heading", name="Wasn't you?")).to_be_visible()
    expect(page.get_by_text("j***@example.com")).to_be_visible()
    shots.take(page, "dispute")
    page.get_by_role("button", name="Secure my account").click()
    expect(page.get_by_role("heading", name="Your account is locked")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("A reset link is on its way")
    shots.take(page, "dispute-done")

    # 4. A fresh reset mail, with a new link, so the owner can take the account back.
    fresh = demo.wait_for_mail(
        lambda m: (
            m["id"] != first["id"]
            and DEMO_EMAIL in m["to"]
            and any(RESET_LINK in u for u in m["links"])
        ),
        "fresh reset mail",
    )
    assert next(u for u in fresh["links"] if RESET_LINK in u) not in first["links"]

    # 5. Signing in with the password just set is refused: the account is blocked. The
    # block is a job the demo's worker runs right after the answer: a few tries at most.
    for _ in range(20):
        page.goto(f"{site}/signin")
        page.get_by_label("Email").fill(DEMO_EMAIL)
        page.get_by_label("Password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        if page.get_by_role("alert").count():
            break
        page.wait_for_timeout(250)
    expect(page.get_by_role("alert")).to_contain_text("user is blocked")
    shots.take(page, "signin-refused")

    # 6. The link once more: used.
    page.goto(link)
    expect(page.get_by_role("heading", name="This link has already been used")).to_be_visible()
