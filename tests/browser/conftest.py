"""The dashboard in real headless Chromium: Debian's ``chromium`` driven by Playwright for Python with the
system browser (Playwright's own browser download is not used). Without ``/usr/bin/chromium`` every test
here is skipped with one plain reason (``.ci/run`` installs it; locally: ``apt-get install -y chromium``).

Each module gets its own ``python -m dora_local`` (what ``make serve`` runs, ``tests/support/server.py``)
and its own browser; screenshots go to ``tests/output/screenshots/`` (git-ignored) for review.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.server import Served, serve

CHROMIUM = Path(os.environ.get("DORA_CHROMIUM", "/usr/bin/chromium"))
SKIP_REASON = f"Chromium not found at {CHROMIUM}: browser tests skipped"
# Debian's chromium as root in a container: no sandbox, no GPU, nothing fetched in the background.
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
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "output" / "screenshots"
KEY = "browser-admin-key"
SPACE = "Spaces-1"
TIMEOUT = 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    """Skip, saying why, before a server or a browser starts, when there is no Chromium."""
    if not CHROMIUM.exists():
        pytest.skip(SKIP_REASON)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``python -m dora_local`` on a free port with the admin key ``KEY`` (schedule: on request only)."""
    with serve(tmp_path_factory.mktemp("serve") / "serve.log", DORA_LOCAL_API_KEY=KEY) as local:
        yield local


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (the system's), driven by Playwright."""
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is not installed (make test installs it)"
    )
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Api:
    """The service's API, as the tests seed and read it (the admin key)."""

    def __init__(self, url: str, key: str = KEY) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(f"{self.url}{path}", params=params, timeout=TIMEOUT)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def post(self, path: str, body: Any, status: tuple[int, ...] = (200, 201)) -> Any:
        response = self.session.post(f"{self.url}{path}", json=body, timeout=TIMEOUT)
        assert response.status_code in status, (path, response.status_code, response.text)
        return response.json() if response.content else None

    def recompute(self) -> None:
        requests.post(f"{self.url}/_local/schedule/run", timeout=300).raise_for_status()

    def drain(self) -> None:
        """Deliver every queued message now (a batch's attributions go through the retry queue)."""
        requests.post(f"{self.url}/_local/queues/drain", timeout=300).raise_for_status()


@pytest.fixture(scope="module")
def api(served: Served) -> Api:
    return Api(served.url)


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot under tests/output/screenshots/ (for review; git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
