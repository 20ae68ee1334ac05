"""Every mail, in English and Japanese, laid out by a real browser engine.

The renderer's own tests check words and markup; these check that the result is
a page a person can read: visible text with the brand's name, a visible button
in the brand's colour for the mails that carry a link, a real height, more than
one colour on screen, and Japanese drawn with glyphs rather than empty boxes.
"""

from __future__ import annotations

import importlib.util
import io
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, ViewportSize, expect

from devkit.browser import DEMO_BRAND
from mail.preview import sample_context
from mail.render import MailRenderer
from tests.browser.conftest import Shots

pytestmark = pytest.mark.browser

LOCALES = ("en", "ja")
MAIL_VIEWPORT: ViewportSize = {"width": 680, "height": 800}  # a mail client's reading pane
BRAND_RGB = "rgb(79, 70, 229)"  # DEMO_BRAND.color, #4f46e5, as CSS reports it
HAVE_PILLOW = importlib.util.find_spec("PIL") is not None

# Colours actually on screen, from layout: backgrounds of visible boxes and the colour
# of visible text. A blank or unstyled page has one or two; a mail has several.
LAYOUT_COLOURS = """() => {
  const colours = new Set();
  let textArea = 0;
  for (const el of document.body.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility !== 'visible' || Number(style.opacity) === 0) continue;
    if (box.width === 0 || box.height === 0) continue;
    if (style.backgroundColor !== 'rgba(0, 0, 0, 0)') colours.add(style.backgroundColor);
    for (const node of el.childNodes) {
      if (node.nodeType !== Node.TEXT_NODE || !node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const rect of range.getClientRects()) textArea += rect.width * rect.height;
      colours.add(style.color);
    }
  }
  return {colours: [...colours], textArea};
}"""

# The width of a heading's text against as many glyphs no font has: equal means every
# character is drawn as the same empty box (a missing font), not as text.
GLYPHS_DRAWN = """(selector) => {
  const element = document.querySelector(selector);
  const text = element.innerText.trim();
  const canvas = document.createElement('canvas').getContext('2d');
  canvas.font = getComputedStyle(element).font;
  const missing = '\\u{10FFFD}'.repeat([...text].length);
  return canvas.measureText(text).width !== canvas.measureText(missing).width;
}"""


@pytest.fixture(scope="module")
def renderer() -> MailRenderer:
    return MailRenderer(DEMO_BRAND)


@pytest.fixture
def mail_page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_viewport_size(MAIL_VIEWPORT)
    return page


def distinct_colours(png: bytes) -> int:
    from PIL import Image  # type: ignore[import-not-found,unused-ignore]  # only with Pillow

    with Image.open(io.BytesIO(png)) as image:
        colours: Any = image.convert("RGB").getcolors(maxcolors=1 << 16)
    return len(colours) if colours is not None else 1 << 16


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("template", MailRenderer.TEMPLATES)
def test_mail_renders_as_a_readable_page(
    renderer: MailRenderer, mail_page: Page, shots: Shots, template: str, locale: str
) -> None:
    sample = sample_context(template)
    mail = renderer.render(template, locale, sample)
    assert mail.locale == locale  # a real catalog, not the English fallback

    page = mail_page
    page.set_content(mail.html, wait_until="load")
    png = page.screenshot(full_page=True)
    (shots.folder / f"{template}.{locale}.png").write_bytes(png)

    # Visible text, with the brand's name in it (hidden preheader text does not count).
    text = page.locator("body").inner_text()
    assert len(text.strip()) > 150, f"almost no visible text: {text!r}"
    expect(page.locator(".rr-brand")).to_have_text(DEMO_BRAND.name)
    assert DEMO_BRAND.name in page.locator(".rr-content").inner_text()
    expect(page.locator("h1.rr-heading")).to_be_visible()
    assert page.evaluate(GLYPHS_DRAWN, "h1.rr-heading"), (
        f"the {locale} heading renders as empty boxes: no font for it "
        "(scripts/ensure-browser, as root, installs one)"
    )

    # Mails with a link (a reset link, or the courtesy mails' sign-in page): a visible
    # button in the brand's colour that goes to it.
    button = page.locator("a.rr-button")
    target = sample.get("link") or sample.get("signin_url")
    if target:
        expect(button).to_be_visible()
        expect(button).to_have_attribute("href", str(target))
        assert button.inner_text().strip(), "the button has no label"
        box = button.bounding_box()
        assert box is not None and box["width"] >= 80 and box["height"] >= 30, box
        expect(page.locator(".rr-button-cell")).to_have_css("background-color", BRAND_RGB)
    else:
        expect(button).to_have_count(0)

    # A real page: tall enough, and more than a colour or two on screen.
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height > 300, f"page is only {height} px tall"
    if HAVE_PILLOW:
        assert distinct_colours(png) >= 16, "the screenshot is (nearly) a single colour"
    else:
        layout = page.evaluate(LAYOUT_COLOURS)
        assert len(layout["colours"]) >= 4, f"too few colours on screen: {layout['colours']}"
        assert layout["textArea"] > 10_000, f"text covers only {layout['textArea']:.0f} px²"
