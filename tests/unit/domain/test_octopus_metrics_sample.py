"""The Octopus reference's ``/metrics`` sample, reproduced field by field from a constructed history.

The sample (octopus-insights-reports-api.txt, "Get deployment level aggregated insights metrics")
is one weekly interval of the series ``All``: 255 deployments, 8 of them failed, each failure
recovered by the next deployment of its stream. The history below is built backwards from its
numbers: six streams in the week of Sunday 2022-06-05 (UTC), gaps between successes, recovery
times and lead times (from attributed change starts) chosen so that every statistic lands on the
sample's value, then run through the engine as any history is (figures per stream, aggregates,
the METRICS §4 document).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dora_insights.domain.aggregates import Granularity, Split, StreamDims, TimeRange, aggregate_report, interval_grid
from dora_insights.domain.figures import compute_stream_figures
from dora_insights.domain.metrics_json import interval_document
from dora_insights.domain.model import Deployment, TaskState
from dora_insights.domain.zones import resolve_time_zone

SAMPLE = json.loads("""
{
  "StartOfInterval": "2022-06-05",
  "NumberOfSuccessfulDeployments": 247,
  "LeadTime": {"Count": 243, "Mean": "-2:32:31.0", "Median": "3:17:51.0", "Min": "-426:53:44.0",
               "Max": "93:32:33.0", "NinetyFifth": "28:15:32.0"},
  "DeploymentFailureRate": {"Successful": 247, "DeploymentFailure": 8, "SuccessfulButHadGuidedFailure": 0,
                            "Total": 255, "Failed": 8, "Rate": 0.03137},
  "TimeSincePreviousDeployment": {"Count": 241, "Mean": "2:12:32.0", "Median": "1:21:56.0", "Min": "0:10:00.0",
                                  "Max": "12:40:01.0", "NinetyFifth": "7:29:43.0"},
  "MeanTimeToRecovery": {"Count": 8, "Mean": "5:26:50.0", "Median": "2:17:17.0", "Min": "0:41:12.0",
                         "Max": "17:11:09.0", "NinetyFifth": "14:55:01.0"},
  "DeploymentsUntilRecovery": {"Count": 8, "Mean": 1.0, "Median": 1.0, "Min": 1.0, "Max": 1.0, "NinetyFifth": 1.0}
}
""")
WEEK = datetime(2022, 6, 5, tzinfo=UTC)
STREAMS = 6

# 241 gaps between successes (s): min 600, median (the 121st) 4916, the 95th percentile falls
# exactly on the 229th (26983), max 45601, and they add up to 241 x 7952 (mean 2:12:32).
GAPS = sorted(
    [600, *[3000] * 119, 4916, *[10570] * 106, 10912, 26983, *[30000] * 9, *[40000] * 2, 45601],
)
# 8 recoveries (s): median (4th + 5th) / 2 = 8237; the 95th percentile, 0.35 x 7th + 0.65 x 8th,
# is 53701 with the 8th at 61869; they add up to 8 x 19610 (mean 5:26:50). The 61869 one is a
# stream that begins with a failure (its success has no previous success: 247 - 241 = 6 such).
# In microseconds (the resolution of a completion time): 38531.857143 s makes the percentile
# 53701.00000005 s, which rounds to the sample's whole second at Octopus's 100 ns resolution.
SECOND = 1_000_000
RECOVERIES = [s * SECOND for s in (2472, 2472, 2472, 8237, 8237)] + [71121 * SECOND - 38531857143, 38531857143]
FIRST_RECOVERY = 61869
# Each recovery above is the gap its success closes, less the time from the previous success
# to the failure: the gap used for it.
RECOVERY_GAPS = [3000, 3000, 3000, 10570, 10570, 40000, 40000]
# 243 lead times (s): median (122nd) 11871, 230th and 231st 101732 (so the 95th percentile,
# at position 229.9, is 28:15:32), min -426:53:44, max 93:32:33, sum 243 x -9151.
LEADS = sorted(
    [-1536824, *[-30000] * 119, -58206, 11871, *[11871] * 107, 101732, 101732, *[101732] * 11, 336753],
)


def _instant(at: datetime) -> str:
    """An instant to the microsecond: the sample's own times have 100 ns ticks, and its recovery
    percentile (14:55:01.0, between a 17:11:09.0 maximum and the value below) needs a value
    that is not a whole millisecond."""
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _history() -> tuple[list[Deployment], dict[str, datetime | None]]:
    deployments: list[Deployment] = []
    change_starts: dict[str, datetime | None] = {}
    ends = [WEEK + timedelta(hours=1, minutes=10 * k) for k in range(STREAMS)]

    def add(stream: int, at: datetime, state: TaskState) -> Deployment:
        deployment = Deployment(
            id=f"Deployments-{len(deployments) + 1}",
            space_id="Spaces-1",
            project=f"project-{stream}",
            project_id=f"Projects-{stream + 1}",
            environment="production",
            environment_id="Environments-1",
            channel_id="Channels-1",
            finished_at=_instant(at),
            state=state,
            received_at=_instant(at),
            body_hash="x",
        )
        deployments.append(deployment)
        return deployment

    # Every stream's first success; the last stream's comes after a failure (the 17:11:09 recovery).
    firsts = [add(k, ends[k], TaskState.SUCCESS) for k in range(STREAMS - 1)]
    add(STREAMS - 1, ends[-1], TaskState.FAILED)
    ends[-1] += timedelta(seconds=FIRST_RECOVERY)
    firsts.append(add(STREAMS - 1, ends[-1], TaskState.SUCCESS))
    successes = list(firsts)
    gaps = list(GAPS)
    recoveries = list(zip(RECOVERY_GAPS, RECOVERIES, strict=True))
    for gap, _ in recoveries:
        gaps.remove(gap)
    plan: list[tuple[int, int | None]] = [(g, r) for g, r in recoveries] + [(g, None) for g in gaps]
    for gap, recovery in sorted(plan, key=lambda p: -p[0]):
        stream = min(range(STREAMS), key=lambda k: ends[k])  # the stream that ends earliest
        done = ends[stream] + timedelta(seconds=gap)
        if recovery is not None:
            add(stream, done - timedelta(microseconds=recovery), TaskState.FAILED)
        successes.append(add(stream, done, TaskState.SUCCESS))
        ends[stream] = done
    assert max(ends) < WEEK + timedelta(days=7), "the history stays in the sample's week"
    # Lead times from attributed change starts; four successes have none (no change, no version).
    for deployment, lead in zip(successes, LEADS, strict=False):
        change_starts[deployment.id] = datetime.fromisoformat(deployment.finished_at) - timedelta(seconds=lead)
    return deployments, change_starts


def test_the_reference_metrics_sample_is_reproduced_field_by_field() -> None:
    deployments, change_starts = _history()
    assert (len(deployments), len(change_starts)) == (255, 243)
    streams: dict[str, list[Deployment]] = {}
    for d in deployments:
        streams.setdefault(d.stream_key, []).append(d)
    figures = [
        (StreamDims.of(ds[-1]), compute_stream_figures(ds, change_starts=change_starts)) for ds in streams.values()
    ]
    now = datetime(2022, 6, 11, 12, tzinfo=UTC)
    grid = interval_grid(TimeRange.LAST_MONTH, Granularity.WEEKLY, resolve_time_zone("UTC"), now)
    (series,) = aggregate_report(figures, grid, split=Split.NONE)
    assert series.name == "All"
    (interval,) = [i for i in series.intervals if i.start_of_interval == "2022-06-05"]
    document = interval_document(interval)
    assert {field: document[field] for field in SAMPLE} == SAMPLE
