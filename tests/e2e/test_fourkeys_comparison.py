"""METRICS §8 reproduced (docs/peer-differences.md): ``tools/fourkeys/compare.py`` sends its small history to
``python -m dora_local`` (a process of its own, as a user runs it) and sets the service's ``/summary`` beside
Google Four Keys' SQL definitions evaluated with DuckDB on the same history.

The documented differences, and nothing else, separate the two sets of figures:

- with every difference of METRICS §8 (``compare.DIFFERENCES``) neutralised, Four Keys' figures equal the
  service's (within rounding: durations to the millisecond, the rate to its 5 places);
- each difference, left in while the others are neutralised, moves at least one of the figures it is
  documented to move, and no other (so none is superfluous and none hides another);
- Four Keys as it is differs from the service on each metric of the §7 table, and agrees on the incidents;
- per deployment, the service's lead time and change-failure flag are the neutralised expectation's.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.server import serve

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
KEY = "fourkeys-comparison-key"
SPACE = "Spaces-1"


def _load_compare() -> ModuleType:
    """The script as a module (tools/ is not a package: it is run as a file)."""
    path = ROOT / "tools" / "fourkeys" / "compare.py"
    spec = importlib.util.spec_from_file_location("fourkeys_compare", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while the file runs
    spec.loader.exec_module(module)
    return module


compare = _load_compare()


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The small history (``--small``, the default seed) through a fresh runtime, compared once."""
    history = compare.generate(compare.SMALL, compare.DEFAULT_SEED)
    log = tmp_path_factory.mktemp("fourkeys") / "serve.log"
    with serve(log, DORA_LOCAL_API_KEY=KEY) as served:
        client = compare.Client(served.url, KEY, SPACE)
        try:
            yield compare.compare(client, history, wait_seconds=30)
        except Exception:
            print(served.tail())  # noqa: T201 (the runtime's output, for the failure report)
            raise


def _differing(comparison: Any, figures: dict[str, float | None]) -> set[str]:
    return {key for key, *_ in compare.ROWS if not compare.same(key, comparison.service[key], figures[key])}


def test_the_history_exercises_every_documented_difference() -> None:
    history = compare.generate(compare.SMALL, compare.DEFAULT_SEED)
    kinds = {d.kind for d in history.deployments}
    assert {"non_head", "skewed", "failed", "retry", "rolled_back", "rollback"} <= kinds
    assert {"rollback", "double", "latent"} <= {i.kind for i in history.incidents}
    assert compare.generate(compare.SMALL, compare.DEFAULT_SEED) == history  # deterministic


def test_the_service_reports_every_compared_figure(comparison: Any) -> None:
    missing = [key for key, *_ in compare.ROWS if comparison.service.get(key) is None]
    assert not missing, f"/summary lacks {missing}: {comparison.summary}"


def test_summary_has_the_incident_time_to_restore(comparison: Any) -> None:
    """API.md: ``/summary`` adds incident ``time_to_restore`` beside failed-deployment ``recovery_time``
    (the figure to compare with Four Keys' time to restore; without it the script reads GET /failures)."""
    assert comparison.restore_field is not None, sorted(comparison.summary)


def test_with_every_documented_difference_neutralised_the_figures_agree(comparison: Any) -> None:
    assert comparison.unexplained() == [], compare.render(comparison)
    assert _differing(comparison, comparison.neutralised) == set(), compare.render(comparison)


@pytest.mark.parametrize("name", sorted(compare.DIFFERENCES))
def test_each_difference_moves_only_the_figures_it_documents(comparison: Any, name: str) -> None:
    difference = compare.DIFFERENCES[name]
    figures = comparison.engine.figures(compare.ALL_DIFFERENCES - {name})
    moved = _differing(comparison, figures)
    assert moved, f"{name} changes no figure of this history: it is not exercised"
    assert moved <= difference.figures, f"{name} also moves {moved - difference.figures}: {figures}"


def test_four_keys_as_it_is_differs_on_each_metric_of_the_table(comparison: Any) -> None:
    differing = _differing(comparison, comparison.fourkeys)
    for key in ("deployments", "lead_time_seconds", "change_failure_rate", "time_to_restore_seconds"):
        assert key in differing, (key, compare.render(comparison))
    assert "incidents" not in differing
    assert differing <= set().union(*(d.figures for d in compare.DIFFERENCES.values()))


def test_per_deployment_figures_are_the_documented_ones(comparison: Any) -> None:
    """Lead time from the earliest newly shipped commit (negative kept), change failure by rules 1, 2 and 4
    (a failure's ``commit_sha`` charges the first successful deployment of its stream that shipped it)."""
    assert comparison.mismatches == [], compare.render(comparison)


def test_the_report_names_the_reasons(comparison: Any) -> None:
    text = compare.render(comparison)
    assert "With every documented difference neutralised, Four Keys' figures equal this service's." in text
    for name in compare.DIFFERENCES:
        assert name in text
