"""CI detection and idempotency ids: pure functions of the CI's variables."""

from __future__ import annotations

import re

import pytest

from dora_insights_cli.ci import CiRun, clean_url, detect, idempotency_id, ref_parts, repository_name
from tests.unit.cli.ci_variables import CIS, SHA, job

CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")  # the service's client id alphabet (dialects/native.py)


@pytest.mark.parametrize("ci", CIS)
def test_each_ci_is_detected_with_what_its_variables_say(ci: str) -> None:
    expected = job(ci)

    run = detect(expected.variables)

    assert run is not None
    assert run.sha == SHA
    assert run.repository_url == expected.repository_url
    assert run.branch == expected.branch
    assert run.run_url == expected.run_url
    assert run.project == expected.project
    assert run.environment == expected.environment
    assert run.name == expected.source_name
    assert run.run_id


def test_no_ci_variables_is_no_ci() -> None:
    assert detect({"HOME": "/home/me", "PATH": "/usr/bin"}) is None


@pytest.mark.parametrize("ci", CIS)
def test_the_same_run_and_attempt_gets_the_same_id(ci: str) -> None:
    first, again = detect(job(ci).variables), detect(job(ci).variables)
    assert first is not None and again is not None

    assert idempotency_id(first, "deployment", "shop", "production") == idempotency_id(
        again, "deployment", "shop", "production"
    )


@pytest.mark.parametrize("ci", CIS)
def test_a_retried_job_gets_a_new_id(ci: str) -> None:
    first, retried = detect(job(ci, attempt=1).variables), detect(job(ci, attempt=2).variables)
    assert first is not None and retried is not None

    assert idempotency_id(first, "deployment", "shop", "production") != idempotency_id(
        retried, "deployment", "shop", "production"
    )


@pytest.mark.parametrize("ci", CIS)
def test_ids_fit_the_service_client_id_alphabet(ci: str) -> None:
    run = detect(job(ci, run="run/with spaces{and}braces" * 5).variables)
    assert run is not None

    made = idempotency_id(run, "deployment", "a project with spaces", "prod/eu")

    assert made is not None
    assert CLIENT_ID.match(made), made
    assert made.startswith(f"{run.provider}-")


def test_what_is_sent_is_part_of_the_id() -> None:
    run = CiRun(provider="github", name="GitHub Actions", run_id="1", attempt="1")

    ids = {
        idempotency_id(run, "deployment", "shop", "production"),
        idempotency_id(run, "deployment", "shop", "staging"),
        idempotency_id(run, "deployment", "cart", "production"),
        idempotency_id(run, "failure", "shop", "production"),
    }

    assert len(ids) == 4


def test_a_run_without_an_id_gives_no_idempotency_id() -> None:
    assert idempotency_id(CiRun(provider="jenkins", name="Jenkins"), "deployment", "shop", "prod") is None


def test_a_github_pull_request_names_its_head_branch() -> None:
    variables = {**job("github").variables, "GITHUB_REF": "refs/pull/7/merge", "GITHUB_HEAD_REF": "feature/x"}

    run = detect(variables)

    assert run is not None
    assert run.branch == "feature/x"


def test_a_github_pull_request_run_deploys_its_head_commit_not_the_merge_commit() -> None:
    """``GITHUB_SHA`` of a ``pull_request`` run is a merge commit no branch holds; the event names the head."""
    head = "b" * 40
    variables = {**job("github").variables, "GITHUB_REF": "refs/pull/7/merge", "GITHUB_HEAD_REF": "feature/x"}

    run = detect(variables, {"pull_request": {"number": 7, "head": {"sha": head, "ref": "feature/x"}}})
    push = detect(job("github").variables, {"before": "c" * 40, "head_commit": {"id": SHA}})
    odd = detect(variables, {"pull_request": {"head": {"sha": "not a sha"}}})

    assert run is not None and run.sha == head
    assert push is not None and push.sha == SHA
    assert odd is not None and odd.sha == SHA


def test_a_github_tag_build_has_a_tag_and_no_branch() -> None:
    run = detect({**job("github").variables, "GITHUB_REF": "refs/tags/v1.4.2"})

    assert run is not None
    assert (run.branch, run.tag) == (None, "v1.4.2")


def test_github_event_gives_the_pushed_range_and_default_branch() -> None:
    before = "1" * 40
    run = detect(job("github").variables, {"before": before, "repository": {"default_branch": "trunk"}})

    assert run is not None
    assert (run.before_sha, run.default_branch) == (before, "trunk")


def test_all_zero_before_sha_is_no_previous_commit() -> None:
    run = detect({**job("gitlab").variables, "CI_COMMIT_BEFORE_SHA": "0" * 40})

    assert run is not None
    assert run.before_sha is None


def test_buildkite_head_instead_of_a_sha_is_no_sha() -> None:
    run = detect({**job("buildkite").variables, "BUILDKITE_COMMIT": "HEAD"})

    assert run is not None
    assert run.sha is None


def test_jenkins_multibranch_pull_request_uses_its_source_branch() -> None:
    variables = {**job("jenkins").variables, "BRANCH_NAME": "PR-12", "CHANGE_BRANCH": "feature/y"}

    run = detect(variables)

    assert run is not None
    assert run.branch == "feature/y"


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("refs/heads/main", ("main", None)),
        ("refs/heads/feature/a", ("feature/a", None)),
        ("refs/tags/v1", (None, "v1")),
        ("origin/main", ("main", None)),
        ("refs/remotes/origin/dev", ("dev", None)),
        ("refs/pull/3/merge", (None, None)),
        ("main", ("main", None)),
        (None, (None, None)),
    ],
)
def test_ref_parts(ref: str | None, parts: tuple[str | None, str | None]) -> None:
    assert ref_parts(ref) == parts


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:token@github.com/acme/shop.git", "https://github.com/acme/shop.git"),
        ("https://x-access-token@github.com/acme/shop", "https://github.com/acme/shop"),
        ("ssh://git:pw@host/acme/shop.git", "ssh://git@host/acme/shop.git"),
        ("git@github.com:acme/shop.git", "git@github.com:acme/shop.git"),
        ("https://github.com/acme/shop", "https://github.com/acme/shop"),
    ],
)
def test_clean_url_drops_credentials(url: str, clean: str) -> None:
    assert clean_url(url) == clean


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://github.com/acme/shop.git", "shop"),
        ("git@github.com:acme/shop.git", "shop"),
        ("acme/shop", "shop"),
        ("https://dev.azure.com/acme/shop/_git/shop", "shop"),
        (None, None),
    ],
)
def test_repository_name(url: str | None, name: str | None) -> None:
    assert repository_name(url) == name
