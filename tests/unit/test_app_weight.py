"""The dashboard's page weight: the page and every asset it loads, as served to a browser (gzip), stays
under 250 KB (issue 18). The browser tests measure the same in Chromium (tests/browser)."""

from __future__ import annotations

import pytest

from dora_insights.handlers import static_files

BUDGET_BYTES = 250 * 1000


def dashboard_weight() -> dict[str, int]:
    """Bytes on the wire per file of ``/app/``: its page and assets, gzip-compressed as served."""
    site = static_files.bundle("app")
    sizes = {"index.html": len(site.page.gzipped)}
    sizes.update({name: len(file.gzipped) for name, file in site.assets.items()})
    return sizes


def test_the_dashboard_weighs_under_250_kb_gzipped(record_property: pytest.RecordProperty) -> None:
    sizes = dashboard_weight()
    total = sum(sizes.values())
    record_property("dashboard_gzipped_bytes", total)
    assert total < BUDGET_BYTES, sizes


def test_the_page_loads_only_the_manifests_assets() -> None:
    # Everything the page can load is counted above: the manifest is all it may load.
    assert set(dashboard_weight()) - {"index.html"} == set(static_files.bundle("app").assets)
