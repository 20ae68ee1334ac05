"""Write the README's pictures: `.venv/bin/python scripts/screenshots.py` (add `mails`
for the mail pictures only, without starting the demo).

    docs/mail/<template>.png   each mail in English, as a mail client shows it
    docs/demo/forgot.png       the demo website's forgot form
    docs/demo/mail.png         the reset mail in the demo's inbox
    docs/demo/reset.png        the reset form the mail's button opens

The mails are rendered with the demo's brand and sample data; the demo pictures
come from `resetrelay demo` itself, run on free ports and driven by Debian's
Chromium (scripts/ensure-browser installs it), as tests/browser/test_demo.py does.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file: make the project importable
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright  # noqa: E402

from devkit.browser import (  # noqa: E402
    DEMO_BRAND,
    DEMO_EMAIL,
    NEW_PASSWORD,
    ChromiumMissing,
    launch_chromium,
    run_demo,
)
from mail.preview import sample_context  # noqa: E402
from mail.render import MailRenderer  # noqa: E402

MAIL_DIR = ROOT / "docs" / "mail"
DEMO_DIR = ROOT / "docs" / "demo"
MAIL_VIEWPORT: ViewportSize = {
    "width": 680,
    "height": 400,
}  # full-page shots grow to the mail's height
SITE_VIEWPORT: ViewportSize = {"width": 1000, "height": 720}


def mails(browser: Browser) -> list[Path]:
    renderer = MailRenderer(DEMO_BRAND)
    page = browser.new_page(viewport=MAIL_VIEWPORT)
    written = []
    for template in renderer.TEMPLATES:
        mail = renderer.render(template, "en", sample_context(template))
        page.set_content(mail.html, wait_until="load")
        path = MAIL_DIR / f"{template}.png"
        page.screenshot(path=str(path), full_page=True)
        written.append(path)
    page.close()
    return written


def demo(browser: Browser) -> list[Path]:
    forgot, mail, reset = (DEMO_DIR / f"{name}.png" for name in ("forgot", "mail", "reset"))
    with run_demo() as running:
        context = browser.new_context(locale="en-US", viewport=SITE_VIEWPORT)
        context.set_default_timeout(10_000)
        page = context.new_page()

        page.goto(f"{running.urls.website}/forgot")
        page.get_by_label("Email").fill(DEMO_EMAIL)
        page.screenshot(path=str(forgot))
        page.get_by_role("button", name="Send reset link").click()
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

        message = running.wait_for_mail(lambda m: DEMO_EMAIL in m["to"], "reset mail")
        page.goto(running.urls.inbox)
        page.get_by_role("link", name=message["subject"]).click()
        body = page.frame_locator("iframe")
        button = body.get_by_role("link", name="Choose a new password")
        expect(button).to_be_visible()
        _screenshot_down_to(page, "section:has(iframe)", mail)

        with context.expect_page() as opened:
            button.click()
        form = opened.value
        form.set_viewport_size(SITE_VIEWPORT)
        expect(form.get_by_role("heading", name="Choose a new password")).to_be_visible()
        form.locator("#password").fill(NEW_PASSWORD)  # the policy hints tick themselves
        form.locator("#password_confirm").fill(NEW_PASSWORD)
        form.evaluate("document.activeElement.blur()")
        form.screenshot(path=str(reset), full_page=True)
        context.close()
    return [forgot, mail, reset]


def _screenshot_down_to(page: Page, selector: str, path: Path) -> None:
    """The page from its top to the bottom of `selector`: the parts worth showing."""
    box = page.locator(selector).bounding_box()
    if box is None:
        raise RuntimeError(f"{selector} is not on the page")
    width = page.evaluate("document.documentElement.scrollWidth")
    height = box["y"] + box["height"] + 16
    page.screenshot(
        path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height}
    )


def main() -> int:
    MAIL_DIR.mkdir(parents=True, exist_ok=True)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        try:
            browser = launch_chromium(playwright)
        except ChromiumMissing as exc:
            print(f"screenshots: {exc}", file=sys.stderr)
            return 1
        written = mails(browser)
        if sys.argv[1:] != ["mails"]:
            written += demo(browser)
        browser.close()
    for path in written:
        print(f"screenshots: wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
