"""The mail's code on a second device, in a real browser against `resetrelay demo`.

The reset is requested in one browser; the code is read from the catcher's copy of
the mail; a fresh browser context (another device: no cookies, no link) enters the
address and the code, sets a new password, and is done. The ticket never shows in a
URL on the way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from devkit.browser import DEMO_EMAIL, NEW_PASSWORD, Demo, run_demo
from tests.browser.conftest import STEP_TIMEOUT_MS, Shots

pytestmark = pytest.mark.browser

CODE = re.compile(r"Or enter this code on the reset page: ([A-Z2-9]{4}-[A-Z2-9]{4})")


@pytest.fixture
def demo() -> Iterator[Demo]:
    with run_demo() as running:
        yield running


def test_code_on_a_second_device(demo: Demo, browser: Browser, page: Page, shots: Shots) -> None:
    site = demo.urls.website

    # 1. The first device asks for a reset; the sent page offers the code page.
    page.goto(f"{site}/forgot")
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_role("link", name="Have a code? Enter it here")).to_be_visible()
    shots.take(page, "forgot-sent")

    # 2. The code, as the mail's text part carries it.
    mail = demo.wait_for_mail(
        lambda m: DEMO_EMAIL in m["to"] and CODE.search(m["text"]) is not None, "reset mail"
    )
    found = CODE.search(mail["text"])
    assert found is not None
    code = found.group(1)

    # 3. Another device: a fresh browser profile, which has neither cookie nor link.
    other = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    other.set_default_timeout(STEP_TIMEOUT_MS)
    shots.contexts.append(other)
    try:
        phone = other.new_page()
        phone.goto(f"{site}/forgot")
        phone.get_by_role("link", name="Have a code from our email?").click()
        expect(phone.get_by_role("heading", name="Have a code?")).to_be_visible()
        # A typo first: one message, whatever went wrong.
        phone.get_by_label("Email").fill(DEMO_EMAIL)
        wrong = code[:-1] + ("2" if code[-1] != "2" else "3")
        phone.get_by_label("Code").fill(wrong)
        phone.get_by_role("button", name="Continue").click()
        expect(phone.get_by_role("alert")).to_have_text(
            "That code doesn't work. Check it, or request a new email."
        )
        # Then the code as people type it: lower case, without the dash.
        phone.get_by_label("Code").fill(code.replace("-", "").lower())
        shots.take(phone, "code")
        phone.get_by_role("button", name="Continue").click()
        expect(phone.get_by_role("heading", name="Choose a new password")).to_be_visible()
        expect(phone.get_by_text("j***@example.com")).to_be_visible()
        assert "ticket" not in phone.url and code not in phone.url
        shots.take(phone, "reset-form")

        # 4. The new password: done.
        phone.locator("#password").fill(NEW_PASSWORD)
        phone.locator("#password_confirm").fill(NEW_PASSWORD)
        phone.get_by_role("button", name="Set new password").click()
        expect(phone.get_by_role("heading", name="Your password has been changed")).to_be_visible()
        shots.take(phone, "reset-done")
    finally:
        other.close()
