"""A real browser for the console tests: Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"


def require_chromium() -> None:
    """Skips without Chromium, unless CI said the toolchain must be there (then it fails)."""
    if shutil.which(CHROMIUM) is None:
        message = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CAPGATE_REQUIRE_CLIENTS") == "1":
            pytest.fail(message)
        pytest.skip(message)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser: Browser, base_url: str, **options: Any) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(base_url=base_url, **options)
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the revoke form asks "are you sure?"
    return context, page


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)


# An axe-style check run in the page: every form control has a label, every link and button a name,
# every chart an accessible name, and all visible text meets WCAG AA contrast against its background.
ACCESSIBILITY_CHECK = """
() => {
  const problems = [];
  const visible = (el) => !el.closest('[hidden]') && getComputedStyle(el).display !== 'none'
    && getComputedStyle(el).visibility !== 'hidden';
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const byFor = el.id && document.querySelector(`label[for="${el.id}"]`);
    if (!(byFor || el.closest('label') || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby'))) {
      problems.push('form control without a label: ' + el.outerHTML.slice(0, 100));
    }
  }
  for (const el of document.querySelectorAll('a, button')) {
    if (visible(el) && !(el.textContent.trim() || el.getAttribute('aria-label'))) {
      problems.push('link or button without a name: ' + el.outerHTML.slice(0, 100));
    }
  }
  for (const svg of document.querySelectorAll('svg')) {
    if (svg.getAttribute('role') !== 'img' || !svg.querySelector('title')) problems.push('chart without a name');
  }
  if (!document.documentElement.lang) problems.push('page without lang');
  if (document.querySelectorAll('h1').length !== 1) problems.push('page without exactly one h1');
  const rgba = (text) => {
    const parts = text.match(/rgba?\\(([^)]+)\\)/)[1].split(',').map(Number);
    return {r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1};
  };
  const luminance = ({r, g, b}) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const colour = rgba(getComputedStyle(el).backgroundColor);
      if (colour.a > 0) return colour;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const checked = new Set();
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || checked.has(el) || el.closest('svg') || !visible(el)) continue;
    checked.add(el);
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || box.right < 0) continue;
    const style = getComputedStyle(el);
    const [l1, l2] = [luminance(rgba(style.color)), luminance(background(el))];
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`contrast ${ratio.toFixed(2)}: ${el.tagName} "${el.textContent.trim().slice(0, 40)}"`);
    }
  }
  return problems;
}
"""


async def accessibility_problems(page: Page) -> list[str]:
    return list(await page.evaluate(ACCESSIBILITY_CHECK))


async def overflows_horizontally(page: Page) -> bool:
    return bool(await page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth + 1"))
