"""Orlo's rules (domain/orlo.py): one full release driven in memory, then every query over it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dora_insights.domain import orlo
from dora_insights.domain.model import Source, TaskState
from dora_insights.domain.orlo import (
    OrloRelease,
    OrloStatus,
    PackageFilters,
    Page,
    ReleaseFilters,
)

T0 = datetime(2015, 12, 17, 18, 0, 5, tzinfo=UTC)  # a Thursday, ISO week 51
RID = "11111111-1111-4111-8111-111111111111"
PID_API = "22222222-2222-4222-8222-222222222222"
PID_WEB = "33333333-3333-4333-8333-333333333333"


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def full_release() -> OrloRelease:
    """Create, add two packages, start both, stop api failed and web successful, stop the release."""
    release = orlo.new_release(
        RID, user="alice", platforms=["uk", "ie"], team="A-Team", references=["TICKET-1"], note="hi", now=at(0)
    )
    release, _ = orlo.add_package(release, PID_API, name="api", version="1.0.0")
    release, _ = orlo.add_package(release, PID_WEB, name="web", version="2.0.0", rollback=True, diff_url="http://d")
    release = orlo.start_package(release, PID_API, at(10))
    release = orlo.start_package(release, PID_WEB, at(20))
    release = orlo.stop_package(release, PID_API, success=False, now=at(70))
    release = orlo.stop_package(release, PID_WEB, success=True, now=at(50))
    return orlo.stop_release(release, at(100))


def make(rid: str, stime: datetime, *packages: tuple[str, str, OrloStatus, bool], **kw: object) -> OrloRelease:
    release = OrloRelease(id=rid, user=str(kw.get("user", "bob")), platforms=("uk",), stime=stime)
    release = replace(release, team=kw.get("team", "B-Team"))  # type: ignore[arg-type]
    pkgs = tuple(
        orlo.OrloPackage(
            id=f"{rid}-{i}",
            release_id=rid,
            name=name,
            version=version,
            status=status,
            rollback=rollback,
            stime=None if status is OrloStatus.NOT_STARTED else stime,
            ftime=stime + timedelta(seconds=5) if status in (OrloStatus.SUCCESSFUL, OrloStatus.FAILED) else None,
        )
        for i, (name, version, status, rollback) in enumerate(packages)
    )
    return replace(release, packages=pkgs)


S, F, P, N = OrloStatus.SUCCESSFUL, OrloStatus.FAILED, OrloStatus.IN_PROGRESS, OrloStatus.NOT_STARTED


# ---------------------------------------------------------------- workflow


def test_full_release_records_times_statuses_and_durations() -> None:
    release = full_release()
    api, web = release.packages
    assert (api.status, web.status) == (F, S)
    assert api.stime == at(10) and api.ftime == at(70) and orlo.duration_seconds(api.duration) == 60
    assert release.stime == at(0) and release.ftime == at(100) and orlo.duration_seconds(release.duration) == 100
    assert release.status is F
    assert release.rollback is True
    assert release.notes == ("hi",)


def test_notes_are_appended_and_metadata_merged_later_keys_winning() -> None:
    release = orlo.new_release(RID, user="u", platforms=["p"], metadata={"a": 1, "b": 2}, now=T0)
    release = orlo.add_metadata(orlo.add_note(release, "one"), {"b": 3, "c": 4})
    assert release.notes == ("one",)
    assert release.metadata == {"a": 1, "b": 3, "c": 4}


def test_stopping_a_package_never_started_is_refused() -> None:
    release, _ = orlo.add_package(
        orlo.new_release(RID, user="u", platforms=["p"], now=T0), PID_API, name="a", version="1"
    )
    with pytest.raises(orlo.PackageNotStartedError):
        orlo.stop_package(release, PID_API, success=True, now=at(1))


def test_starting_a_package_twice_is_refused() -> None:
    release, _ = orlo.add_package(
        orlo.new_release(RID, user="u", platforms=["p"], now=T0), PID_API, name="a", version="1"
    )
    release = orlo.start_package(release, PID_API, at(1))
    with pytest.raises(orlo.PackageAlreadyStartedError):
        orlo.start_package(release, PID_API, at(2))


def test_starting_a_stopped_package_is_refused() -> None:
    release = full_release()
    with pytest.raises(orlo.OrloWorkflowError):
        orlo.start_package(release, PID_API, at(200))


def test_stopping_a_package_twice_is_refused() -> None:
    release, _ = orlo.add_package(
        orlo.new_release(RID, user="u", platforms=["p"], now=T0), PID_API, name="a", version="1"
    )
    release = orlo.stop_package(orlo.start_package(release, PID_API, at(1)), PID_API, success=True, now=at(2))
    with pytest.raises(orlo.PackageAlreadyStoppedError):
        orlo.stop_package(release, PID_API, success=False, now=at(3))


def test_adding_a_package_to_a_stopped_release_is_refused() -> None:
    with pytest.raises(orlo.ReleaseAlreadyStoppedError):
        orlo.add_package(full_release(), "44444444-4444-4444-8444-444444444444", name="x", version="1")


def test_stopping_a_release_twice_or_starting_it_after_stop_is_refused() -> None:
    with pytest.raises(orlo.ReleaseAlreadyStoppedError):
        orlo.stop_release(full_release(), at(500))
    with pytest.raises(orlo.ReleaseAlreadyStoppedError):
        orlo.start_release(full_release(), at(500))


def test_a_package_may_still_be_stopped_after_its_release_stopped() -> None:
    release, _ = orlo.add_package(
        orlo.new_release(RID, user="u", platforms=["p"], now=T0), PID_API, name="a", version="1"
    )
    release = orlo.stop_release(orlo.start_package(release, PID_API, at(1)), at(2))
    assert orlo.stop_package(release, PID_API, success=True, now=at(3)).packages[0].status is S


def test_start_release_restamps_stime_like_orlo() -> None:
    release = orlo.new_release(RID, user="u", platforms=["p"], now=T0)
    assert orlo.start_release(release, at(9)).stime == at(9)


def test_unknown_package_ids_are_not_found_with_status_404() -> None:
    with pytest.raises(orlo.PackageNotFoundError) as caught:
        orlo.start_package(full_release(), "55555555-5555-4555-8555-555555555555", at(1))
    assert caught.value.status == 404


def test_a_package_of_another_release_is_a_mismatch() -> None:
    package = full_release().packages[0]
    orlo.check_package_release(package, RID)
    with pytest.raises(orlo.PackageReleaseMismatchError):
        orlo.check_package_release(package, "66666666-6666-4666-8666-666666666666")


def test_workflow_errors_are_client_errors() -> None:
    for error in (
        orlo.PackageNotStartedError,
        orlo.PackageAlreadyStartedError,
        orlo.PackageAlreadyStoppedError,
        orlo.ReleaseAlreadyStoppedError,
        orlo.PackageReleaseMismatchError,
    ):
        assert error("x").status == 400
    assert orlo.ReleaseNotFoundError("x").status == 404


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        OrloRelease(id=RID, user="u", platforms=(), stime=datetime(2020, 1, 1))


# ---------------------------------------------------------------- release status


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([F, S], F),
        ([F, P], F),
        ([P, S], P),
        ([P, N], P),
        ([S, S], S),
        ([N, N], N),
        ([N, S], None),
        ([], None),
    ],
)
def test_release_status_is_derived_from_packages(statuses: list[OrloStatus], expected: OrloStatus | None) -> None:
    assert orlo.release_status(statuses) is expected


def test_mixed_not_started_and_successful_matches_no_status_filter() -> None:
    release = make("r1", T0, ("a", "1", N, False), ("b", "1", S, False))
    for status in OrloStatus:
        assert not orlo.release_matches(release, ReleaseFilters(status=status))


# ---------------------------------------------------------------- filters


def only(filters: ReleaseFilters) -> bool:
    return orlo.release_matches(full_release(), filters)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (ReleaseFilters(), True),
        (ReleaseFilters(user="alice"), True),
        (ReleaseFilters(user="bob"), False),
        (ReleaseFilters(team="A-Team"), True),
        (ReleaseFilters(team="B-Team"), False),
        (ReleaseFilters(teamless=True), False),
        (ReleaseFilters(platform="ie"), True),
        (ReleaseFilters(platform="fr"), False),
        (ReleaseFilters(reference="TICKET"), True),
        (ReleaseFilters(reference="OTHER"), False),
        (ReleaseFilters(status=F), True),
        (ReleaseFilters(status=S), False),
        (ReleaseFilters(status=P), False),
        (ReleaseFilters(rollback=True), True),
        (ReleaseFilters(rollback=False), False),
        (ReleaseFilters(stime_before=at(1)), True),
        (ReleaseFilters(stime_before=at(0)), False),  # strict, as Orlo's "<"
        (ReleaseFilters(stime_after=at(-1)), True),
        (ReleaseFilters(stime_after=at(0)), False),
        (ReleaseFilters(ftime_before=at(101)), True),
        (ReleaseFilters(ftime_before=at(100)), False),
        (ReleaseFilters(ftime_after=at(99)), True),
        (ReleaseFilters(ftime_after=at(100)), False),
        (ReleaseFilters(duration_lt=101), True),
        (ReleaseFilters(duration_lt=100), False),
        (ReleaseFilters(duration_gt=99), True),
        (ReleaseFilters(duration_gt=100), False),
        (ReleaseFilters(package=PackageFilters(name="web")), True),
        (ReleaseFilters(package=PackageFilters(name="db")), False),
        (ReleaseFilters(package=PackageFilters(version="1.0.0")), True),
        (ReleaseFilters(package=PackageFilters(version="9")), False),
        (ReleaseFilters(package=PackageFilters(rollback=False)), True),
        (ReleaseFilters(package=PackageFilters(status=S)), True),
        (ReleaseFilters(package=PackageFilters(status=P)), False),
        (ReleaseFilters(package=PackageFilters(duration_gt=45)), True),  # api took 60 s
        (ReleaseFilters(package=PackageFilters(duration_gt=60)), False),
        (ReleaseFilters(package=PackageFilters(duration_lt=31)), True),  # web took 30 s
        (ReleaseFilters(package=PackageFilters(duration_lt=30)), False),
        (ReleaseFilters(package=PackageFilters(stime_after=at(15))), True),
        (ReleaseFilters(package=PackageFilters(ftime_before=at(50))), False),
        # every package filter must hold for the same package
        (ReleaseFilters(package=PackageFilters(name="api", status=F)), True),
        (ReleaseFilters(package=PackageFilters(name="api", status=S)), False),
        (ReleaseFilters(package=PackageFilters(name="web", rollback=True)), True),
    ],
)
def test_release_filters(filters: ReleaseFilters, expected: bool) -> None:
    assert only(filters) is expected


def test_team_null_selects_teamless_releases() -> None:
    teamless = replace(make("r1", T0, ("a", "1", S, False)), team=None)
    assert orlo.release_matches(teamless, ReleaseFilters(teamless=True))
    assert not orlo.release_matches(teamless, ReleaseFilters(team="B-Team"))


def test_in_progress_filter_needs_no_failed_package() -> None:
    assert orlo.release_matches(make("r1", T0, ("a", "1", P, False), ("b", "1", S, False)), ReleaseFilters(status=P))
    assert not orlo.release_matches(
        make("r2", T0, ("a", "1", P, False), ("b", "1", F, False)), ReleaseFilters(status=P)
    )


def test_a_release_without_packages_matches_no_package_filter_and_no_status() -> None:
    empty = OrloRelease(id="r", user="u", platforms=(), stime=T0)
    assert not orlo.release_matches(empty, ReleaseFilters(package=PackageFilters(rollback=False)))
    assert not orlo.release_matches(empty, ReleaseFilters(status=N))


def test_each_release_is_listed_once_even_when_several_packages_match() -> None:
    listed = orlo.select_releases(
        [full_release(), full_release()], ReleaseFilters(package=PackageFilters(stime_after=at(0))), Page()
    )
    assert [r.id for r in listed] == [RID]


def test_ordering_is_stime_descending_by_default_and_ascending_on_request() -> None:
    releases = [make(f"r{i}", at(i * 60), ("a", "1", S, False)) for i in range(5)]
    assert [r.id for r in orlo.select_releases(releases, ReleaseFilters(), Page())] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.id for r in orlo.select_releases(releases, ReleaseFilters(), Page(asc=True))] == [
        "r0",
        "r1",
        "r2",
        "r3",
        "r4",
    ]


def test_limit_and_offset_page_after_ordering() -> None:
    releases = [make(f"r{i}", at(i * 60), ("a", "1", S, False)) for i in range(5)]
    page = orlo.select_releases(releases, ReleaseFilters(), Page(limit=2, offset=1))
    assert [r.id for r in page] == ["r3", "r2"]
    assert orlo.select_releases(releases, ReleaseFilters(), Page(limit=0)) == []
    assert len(orlo.select_releases(releases, ReleaseFilters(), Page(limit=None))) == 5


def test_releases_without_stime_come_last() -> None:
    releases = [make("r0", T0, ("a", "1", S, False)), replace(make("r1", T0, ("a", "1", S, False)), stime=None)]
    assert [r.id for r in orlo.select_releases(releases, ReleaseFilters(), Page())] == ["r0", "r1"]
    assert [r.id for r in orlo.select_releases(releases, ReleaseFilters(), Page(asc=True))] == ["r0", "r1"]


def test_select_packages_filters_and_orders_packages() -> None:
    packages = full_release().packages
    assert [p.name for p in orlo.select_packages(packages, PackageFilters(), Page())] == ["web", "api"]
    assert [p.name for p in orlo.select_packages(packages, PackageFilters(name="api"), Page())] == ["api"]
    assert orlo.select_packages(packages, PackageFilters(status=N), Page()) == []


# ---------------------------------------------------------------- stats

ZERO = {"successful": 0, "failed": 0}


def counts(normal: tuple[int, int] = (0, 0), rollback: tuple[int, int] = (0, 0)) -> dict[str, object]:
    return {
        "releases": {
            "normal": {"successful": normal[0], "failed": normal[1]},
            "rollback": {"successful": rollback[0], "failed": rollback[1]},
            "total": {"successful": normal[0] + rollback[0], "failed": normal[1] + rollback[1]},
        }
    }


def test_global_stats_count_the_failed_rollback_release() -> None:
    assert orlo.stats_global([full_release()]) == {"global": counts(rollback=(0, 1))}


def test_running_and_not_started_releases_count_nowhere() -> None:
    releases = [
        make("r1", T0, ("a", "1", P, False)),
        make("r2", T0, ("a", "1", N, False)),
        make("r3", T0, ("a", "1", N, False), ("b", "1", S, False)),
        OrloRelease(id="r4", user="u", platforms=(), stime=T0),
        make("r5", T0, ("a", "1", S, False)),
        make("r6", T0, ("a", "1", P, False), ("b", "1", F, False)),
    ]
    assert orlo.stats_global(releases) == {"global": counts(normal=(1, 1))}


def test_stats_window_is_inclusive_on_release_stime() -> None:
    release = full_release()
    assert orlo.stats_global([release], stime=at(0), ftime=at(0)) == {"global": counts(rollback=(0, 1))}
    assert orlo.stats_global([release], stime=at(1)) == {"global": counts()}
    assert orlo.stats_global([release], ftime=at(-1)) == {"global": counts()}


def test_stats_per_user_team_platform_and_package() -> None:
    releases = [full_release(), make("r2", at(3600), ("api", "1.0.1", S, False), user="bob")]
    assert orlo.stats_by(releases, "user") == {"alice": counts(rollback=(0, 1)), "bob": counts(normal=(1, 0))}
    assert orlo.stats_by(releases, "team") == {"A-Team": counts(rollback=(0, 1)), "B-Team": counts(normal=(1, 0))}
    assert orlo.stats_by(releases, "platform") == {"ie": counts(rollback=(0, 1)), "uk": counts((1, 0), (0, 1))}
    assert orlo.stats_by(releases, "package") == {"api": counts((1, 0), (0, 1)), "web": counts(rollback=(0, 1))}


def test_stats_for_one_name_and_zeros_for_an_unknown_one() -> None:
    releases = [full_release()]
    assert orlo.stats_by(releases, "user", name="alice") == {"alice": counts(rollback=(0, 1))}
    assert orlo.stats_by(releases, "package", name="nope") == {"nope": counts()}


def test_stats_list_names_outside_the_window_with_zeros() -> None:
    assert orlo.stats_by([full_release()], "user", stime=at(1)) == {"alice": counts()}


def test_teamless_releases_are_under_no_team() -> None:
    assert orlo.stats_by([replace(full_release(), team=None)], "team") == {}


# ---------------------------------------------------------------- by date

FAILED_ROLLBACK = {"rollback": {"failed": 1}}


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("month", {"2015": {"12": FAILED_ROLLBACK}}),
        ("year", {"2015": FAILED_ROLLBACK}),
        ("day", {"2015": {"12": {"17": FAILED_ROLLBACK}}}),
        ("hour", {"2015": {"12": {"17": {"18": FAILED_ROLLBACK}}}}),
        ("week", {"2015": {"51": FAILED_ROLLBACK}}),
        ("iso", {"2015": {"51": {"4": FAILED_ROLLBACK}}}),
    ],
)
def test_release_by_date_nests_by_unit(unit: orlo.Unit, expected: dict[str, object]) -> None:
    assert orlo.stats_by_date([full_release()], "release", unit=unit) == expected


@pytest.mark.parametrize(
    ("unit", "key"), [("month", "12"), ("year", "2015"), ("day", "17"), ("hour", "18"), ("week", "51"), ("iso", "4")]
)
def test_summarize_by_unit_keeps_only_the_unit(unit: orlo.Unit, key: str) -> None:
    assert orlo.stats_by_date([full_release()], "release", unit=unit, summarize_by_unit=True) == {key: FAILED_ROLLBACK}


def test_keys_have_no_zero_padding() -> None:
    early = make("r1", datetime(2016, 1, 2, 3, tzinfo=UTC), ("a", "1", S, False))
    assert orlo.stats_by_date([early], "release", unit="hour") == {
        "2016": {"1": {"2": {"3": {"normal": {"successful": 1}}}}}
    }


def test_iso_weeks_use_the_iso_year() -> None:
    new_year = make("r1", datetime(2016, 1, 1, tzinfo=UTC), ("a", "1", S, False))  # ISO 2015-W53-5
    assert orlo.stats_by_date([new_year], "release", unit="week") == {"2015": {"53": {"normal": {"successful": 1}}}}


def test_package_by_date_puts_the_name_before_the_category_of_its_release() -> None:
    assert orlo.stats_by_date([full_release()], "package", unit="month") == {
        "2015": {"12": {"api": FAILED_ROLLBACK, "web": FAILED_ROLLBACK}}
    }


def test_by_date_counts_add_up_and_filters_apply() -> None:
    releases = [full_release(), make("r2", T0, ("api", "1", S, False)), make("r3", T0, ("api", "1", S, False))]
    assert orlo.stats_by_date(releases, "release", unit="year") == {
        "2015": {"normal": {"successful": 2}, "rollback": {"failed": 1}}
    }
    assert orlo.stats_by_date(releases, "release", unit="year", filters=ReleaseFilters(user="alice")) == {
        "2015": FAILED_ROLLBACK
    }
    only_api = ReleaseFilters(package=PackageFilters(name="api"))
    assert orlo.stats_by_date(releases, "package", unit="year", filters=only_api) == {
        "2015": {"api": {"normal": {"successful": 2}, "rollback": {"failed": 1}}}
    }


def test_by_date_with_no_match_is_empty() -> None:
    assert orlo.stats_by_date([full_release()], "release", filters=ReleaseFilters(user="nobody")) == {}
    assert orlo.stats_by_date([make("r1", T0, ("a", "1", P, False))], "release") == {}


# ---------------------------------------------------------------- info


def test_info_users_counts_releases_of_any_status() -> None:
    releases = [full_release(), make("r2", T0, ("a", "1", P, False)), make("r3", T0, ("a", "1", S, False))]
    assert orlo.info_users(releases) == {"alice": {"releases": 1}, "bob": {"releases": 2}}
    assert orlo.info_users(releases, user="alice") == {"alice": {"releases": 1}}
    assert orlo.info_users(releases, platform="ie") == {"alice": {"releases": 1}}
    assert orlo.info_users(releases, user="nobody") == {}


def test_info_platforms_counts_releases_per_platform() -> None:
    releases = [full_release(), make("r2", T0, ("a", "1", S, False))]
    assert orlo.info_platforms(releases) == {"ie": {"releases": 1}, "uk": {"releases": 2}}
    assert orlo.info_platforms(releases, platform="ie") == {"ie": {"releases": 1}}
    assert orlo.info_platforms(releases, platform="fr") == {}


def test_info_packages_counts_package_deploys() -> None:
    releases = [full_release(), make("r2", T0, ("api", "1", S, False))]
    assert orlo.info_packages(releases) == {"api": {"releases": 2}, "web": {"releases": 1}}
    assert orlo.info_packages(releases, name="web") == {"web": {"releases": 1}}
    assert orlo.info_packages(releases, platform="ie") == {"api": {"releases": 1}, "web": {"releases": 1}}
    assert orlo.package_list(releases) == {"packages": ["api", "web"]}
    assert orlo.package_list(releases, platform="ie") == {"packages": ["api", "web"]}
    assert orlo.package_list(releases, platform="fr") == {"packages": []}


def test_versions_take_the_latest_successful_package() -> None:
    releases = [
        make("r1", at(0), ("api", "1.0", S, False)),
        make("r2", at(60), ("api", "2.0", S, False)),
        make("r3", at(120), ("api", "3.0", F, False)),
        make("r4", at(180), ("api", "4.0", P, False)),
    ]
    assert orlo.package_versions(releases) == {"api": "2.0"}


def test_a_later_successful_rollback_to_an_older_version_wins() -> None:
    releases = [make("r1", at(0), ("api", "2.0", S, False)), make("r2", at(60), ("api", "1.0", S, True))]
    assert orlo.package_versions(releases) == {"api": "1.0"}


def test_versions_by_release_skip_packages_of_unsuccessful_releases() -> None:
    releases = [
        make("r1", at(0), ("api", "1.0", S, False)),
        make("r2", at(60), ("api", "2.0", S, False), ("web", "1", F, False)),
        make("r3", at(120), ("api", "3.0", S, False), ("web", "2", P, False)),
    ]
    assert orlo.package_versions(releases) == {"api": "3.0"}
    assert orlo.package_versions(releases, by_release=True) == {"api": "1.0"}


def test_versions_of_the_full_release_and_by_platform() -> None:
    releases = [full_release()]
    assert orlo.package_versions(releases) == {"web": "2.0.0"}
    assert orlo.package_versions(releases, by_release=True) == {}
    assert orlo.package_versions(releases, platform="fr") == {}


# ---------------------------------------------------------------- import


def imported(**kw: object) -> orlo.ImportedRelease:
    fields: dict[str, object] = {
        "user": "user_one",
        "platforms": ("GumtreeUK",),
        "stime": datetime(2015, 12, 17, 17, 2, 4, tzinfo=UTC),
        "packages": (orlo.ImportedPackage(name="a", version="1", status=S),),
    }
    fields.update(kw)
    return orlo.ImportedRelease(**fields)  # type: ignore[arg-type]


def test_import_gives_a_package_without_stime_the_releases() -> None:
    (release,) = orlo.import_releases([imported()], id_seed="space")
    assert release.packages[0].stime == release.stime
    assert release.packages[0].release_id == release.id


def test_import_ids_are_stable_for_the_same_document_and_seed() -> None:
    first = orlo.import_releases([imported(), imported(user="other")], id_seed="space")
    again = orlo.import_releases([imported(), imported(user="other")], id_seed="space")
    elsewhere = orlo.import_releases([imported()], id_seed="other-space")
    assert [r.id for r in first] == [r.id for r in again]
    assert first[0].packages[0].id == again[0].packages[0].id
    assert first[0].id != first[1].id != elsewhere[0].id


def test_import_keeps_an_id_the_document_carries() -> None:
    (release,) = orlo.import_releases([imported(id=RID)], id_seed="space")
    assert release.id == RID


def test_import_lists_every_problem_and_imports_nothing() -> None:
    bad = [
        imported(),
        imported(ftime=datetime(2015, 1, 1, tzinfo=UTC)),
        imported(stime=None, packages=(orlo.ImportedPackage(name="a", version="1", status=S),)),
        imported(),
    ]
    with pytest.raises(orlo.ImportInvalidError) as caught:
        orlo.import_releases(bad, id_seed="space")
    fields = [f for f, _ in caught.value.details]
    assert fields == ["[1].ftime", "[2].packages[0].stime", "[3]"]
    assert caught.value.status == 400


# ---------------------------------------------------------------- deployments


def test_a_stopped_package_becomes_one_deployment_per_platform() -> None:
    release = full_release()
    api, web = release.packages
    drafts = orlo.package_deployments(release, web, environment="production")
    assert [d.tenant for d in drafts] == ["uk", "ie"]
    draft = drafts[0]
    assert draft.source is Source.ORLO
    assert (draft.project, draft.environment, draft.version, draft.team) == ("web", "production", "2.0.0", "A-Team")
    assert draft.state is TaskState.SUCCESS and draft.rollback is True
    assert (draft.started_at, draft.finished_at, draft.release_created_at) == (at(20), at(50), at(0))
    assert drafts[0].client_id != drafts[1].client_id
    assert orlo.package_deployments(release, web, environment="production")[0].client_id == draft.client_id
    failed = orlo.package_deployments(release, api, environment="staging")[0]
    assert failed.state is TaskState.FAILED and failed.rollback is False and failed.environment == "staging"


def test_platforms_differing_only_in_case_are_one_tenant_the_first_named() -> None:
    """The catalogue's names are case-insensitive: 'UK' and 'uk' would be two deployments of one stream at
    one instant. The first platform of each name stays, with the client id it always had."""
    release = replace(full_release(), platforms=("UK", "ie", "uk", "IE", "de"))
    web = release.packages[1]
    drafts = orlo.package_deployments(release, web, environment="production")
    assert [d.tenant for d in drafts] == ["UK", "ie", "de"]
    alone = orlo.package_deployments(replace(release, platforms=("UK",)), web, environment="production")
    assert drafts[0].client_id == alone[0].client_id


def test_references_weigh_their_utf8_bytes_with_the_user() -> None:
    release = replace(full_release(), user="alice", references=("T-1", "\u00e9" * 10))
    assert orlo.references_bytes(release) == (5 + 3) + (3 + 3) + (20 + 3)
    assert orlo.MAX_REFERENCES_BYTES == 360 * 1024


def test_running_packages_and_platformless_releases() -> None:
    release, _ = orlo.add_package(orlo.new_release(RID, user="u", platforms=[], now=T0), PID_API, name="a", version="1")
    release = orlo.start_package(release, PID_API, at(1))
    assert orlo.package_deployments(release, release.packages[0], environment="production") == []
    release = orlo.stop_package(release, PID_API, success=True, now=at(2))
    (draft,) = orlo.package_deployments(release, release.packages[0], environment="production")
    assert draft.tenant is None


def test_times_render_in_orlos_format() -> None:
    assert orlo.format_time(T0) == "2015-12-17T18:00:05Z"
    assert orlo.format_time(None) is None
    assert orlo.duration_seconds(timedelta(seconds=59.9)) == 59
    assert orlo.duration_seconds(timedelta(days=2)) == 172800
