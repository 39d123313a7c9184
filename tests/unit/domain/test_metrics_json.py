"""The /metrics document as text (domain/metrics_json.py) is exactly the documented Octopus shape."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dora_insights.dialects.octopus import MetricsInterval, MetricsOut
from dora_insights.domain.aggregates import Interval
from dora_insights.domain.metrics_json import empty_interval_template, interval_json, is_active, metrics_json
from tests.unit.domain.bucket_engine import summarize
from tests.unit.domain.previous_aggregates import Bucket

INTERVAL = Interval(date(2022, 6, 5), datetime(2022, 6, 5, tzinfo=UTC), datetime(2022, 6, 12, tzinfo=UTC))
seconds = st.floats(min_value=-1e6, max_value=1e8, allow_nan=False)


@st.composite
def buckets(draw: st.DrawFn) -> Bucket:
    return Bucket(
        successful=draw(st.integers(0, 50)),
        deployment_failure=draw(st.integers(0, 5)),
        guided_failure_success=draw(st.integers(0, 5)),
        change_failures=draw(st.integers(0, 5)),
        change_failure_deployments=draw(st.integers(5, 10)),
        rework_deployments=draw(st.integers(0, 5)),
        lead_times=draw(st.lists(seconds, max_size=6)),
        since_previous=draw(st.lists(seconds, max_size=6)),
        recovery=draw(st.lists(seconds, max_size=3)),
        until_recovery=draw(st.lists(st.integers(1, 9).map(float), max_size=3)),
        restore=draw(st.lists(seconds, max_size=3)),
        days=draw(st.sets(st.integers(738_000, 738_006), max_size=7)),
    )


@given(buckets())
def test_an_interval_is_the_documented_shape(bucket: Bucket) -> None:
    text = interval_json(summarize(bucket, INTERVAL))
    document = json.loads(text)
    assert MetricsInterval.model_validate(document).model_dump() == document
    assert text.isascii()
    assert document["StartOfInterval"] == "2022-06-05"


def test_durations_are_octopus_strings_and_counts_numbers() -> None:
    bucket = Bucket(successful=3, lead_times=[60.0, 3600.0, 93_784.5], until_recovery=[2.0])
    document = json.loads(interval_json(summarize(bucket, INTERVAL)))
    assert document["LeadTime"] == {
        "Count": 3,
        "Mean": "9:01:21.5",  # 97,444.5 s / 3
        "Median": "1:00:00.0",
        "Min": "0:01:00.0",
        "Max": "26:03:04.5",
        "NinetyFifth": "23:32:46.05",  # 3,600 + 0.9 × (93,784.5 − 3,600)
    }
    assert document["DeploymentsUntilRecovery"]["Mean"] == 2.0
    assert document["TimeToRestore"] == {
        "Count": 0,
        "Mean": None,
        "Median": None,
        "Min": None,
        "Max": None,
        "NinetyFifth": None,
    }


def test_the_empty_template_renders_an_empty_interval_at_any_date() -> None:
    empty = summarize(Bucket(), INTERVAL)
    before, after = empty_interval_template(empty)
    later = Interval(date(2023, 1, 1), INTERVAL.begins, INTERVAL.ends + timedelta(days=1))
    assert before + "2023-01-01" + after == interval_json(summarize(Bucket(), later))
    assert not is_active(empty)
    assert is_active(summarize(Bucket(restore=[5.0]), INTERVAL))
    assert is_active(summarize(Bucket(deployment_failure=1), INTERVAL))


def test_the_document_wraps_series() -> None:
    one = interval_json(summarize(Bucket(successful=1), INTERVAL))
    text = metrics_json([("web", one), ('"odd" name', f"{one},{one}")])
    document = json.loads(text)
    assert MetricsOut.model_validate(document).model_dump() == document
    assert [s["Name"] for s in document["Series"]] == ["web", '"odd" name']
    assert [len(s["Intervals"]) for s in document["Series"]] == [1, 2]
    assert json.loads(metrics_json([])) == {"Series": []}
