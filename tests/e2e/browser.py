"""Headless Chromium for the console's tests: Debian's ``chromium`` package (``make browser`` installs it),
driven by Playwright from PyPI, which never downloads a browser of its own here.

Without Chromium the browser tests skip locally, with the reason, and fail under CI (``CI=true``), as the
PostgreSQL tests do.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from tests.conftest import IN_CI

if TYPE_CHECKING:
    from playwright.sync_api import Browser

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# the machine's network is closed: without these Chromium keeps trying Google's hosts (refused, many at a time)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium() -> str:
    """The Chromium to drive (``CHROMIUM`` overrides); skips the test, or fails it under CI, when there is none."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or DEFAULT_CHROMIUM
    if os.access(path, os.X_OK):
        return path
    reason = f"no Chromium at {path}: `make browser` installs Debian's chromium package (make test runs it)"
    if IN_CI:
        pytest.fail(f"Chromium must be installed under CI; {reason}")
    pytest.skip(reason)


@contextmanager
def launched() -> Iterator[Browser]:
    path = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
