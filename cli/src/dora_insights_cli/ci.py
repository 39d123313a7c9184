"""Which CI runs this job and what its own variables say about the run (pure: a mapping in, a value out).

Every provider reads only the variables listed in cli/README.md "CI variables"; keep the two equal.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, urlsplit, urlunsplit

_ZERO_SHA = re.compile(r"^0+$")
_HEX_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]+")
_ID_PART = 32  # characters kept of a run id or attempt in an idempotency id (the whole id stays <= 128)


@dataclass(frozen=True)
class CiRun:
    """What the CI says about this job; ``None`` where it says nothing."""

    provider: str  # short name, the first part of idempotency ids: github, gitlab, circleci, ...
    name: str  # for people: "GitHub Actions"
    run_id: str | None = None  # the pipeline / workflow run / build
    attempt: str | None = None  # what changes when the job is retried (an attempt number or a new job id)
    job: str | None = None  # the job (step) within the run, stable across its retries
    sha: str | None = None
    repository_url: str | None = None
    branch: str | None = None
    tag: str | None = None
    run_url: str | None = None
    environment: str | None = None  # the deployment environment, where the CI has the notion
    started_at: str | None = None  # as the CI writes it (ISO-8601 text)
    project: str | None = None  # the repository's (or pipeline's) name: the default service
    default_branch: str | None = None
    before_sha: str | None = None  # the previous tip of the branch this run pushed (`changes`)

    def context(self) -> dict[str, str]:
        """The run, for a deployment's ``metadata.ci`` (only what is known)."""
        fields = {
            "provider": self.provider,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "job": self.job,
            "branch": self.branch,
            "tag": self.tag,
            "run_url": self.run_url,
        }
        return {k: v for k, v in fields.items() if v}


def _first(env: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` that is set and not blank, stripped."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _sha(value: str | None) -> str | None:
    """A commit sha, or None for anything else (Buildkite sends ``HEAD`` for builds without one;
    GitLab and GitHub send forty zeros for "no previous commit")."""
    if value is None or not _HEX_SHA.match(value) or _ZERO_SHA.match(value):
        return None
    return value.lower()


def ref_parts(ref: str | None) -> tuple[str | None, str | None]:
    """(branch, tag) of a ref as CIs write them: ``refs/heads/main``, ``refs/tags/v1``,
    ``origin/main``, ``refs/remotes/origin/main`` or a bare ``main``; pull request refs give neither."""
    if not ref:
        return None, None
    if ref.startswith("refs/tags/"):
        return None, ref[len("refs/tags/") :] or None
    if ref.startswith("refs/pull/") or ref.startswith("refs/merge-requests/"):
        return None, None
    for prefix in ("refs/heads/", "refs/remotes/origin/", "origin/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :] or None, None
    if ref.startswith("refs/"):
        return None, None
    return ref, None


def clean_url(url: str | None) -> str | None:
    """The URL without credentials: Jenkins' ``GIT_URL`` and CI clone URLs may carry a token
    (``https://x-access-token:...@github.com/...``); it must never reach the service or a log."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme and parts.netloc and "@" in parts.netloc:
        userinfo, _, host = parts.netloc.rpartition("@")
        keep = "" if parts.scheme in ("http", "https") else userinfo.split(":", 1)[0] + "@"
        return urlunsplit((parts.scheme, keep + host, parts.path, parts.query, parts.fragment))
    return url


def repository_name(url: str | None) -> str | None:
    """The last path segment of a repository URL or ``org/name``, without ``.git``."""
    if not url:
        return None
    path = urlsplit(url).path if "://" in url else url.rpartition(":")[2]
    name = path.rstrip("/").rpartition("/")[2]
    name = name[: -len(".git")] if name.endswith(".git") else name
    return name or None


def _github(env: Mapping[str, str], event: Mapping[str, Any]) -> CiRun:
    server = (_first(env, "GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    repository = _first(env, "GITHUB_REPOSITORY")
    run_id, attempt = _first(env, "GITHUB_RUN_ID"), _first(env, "GITHUB_RUN_ATTEMPT") or "1"
    branch, tag = ref_parts(_first(env, "GITHUB_REF"))
    run_url = None
    if repository and run_id:
        run_url = f"{server}/{repository}/actions/runs/{run_id}/attempts/{attempt}"
    repo_info = event.get("repository")
    default_branch = repo_info.get("default_branch") if isinstance(repo_info, Mapping) else None
    before = event.get("before")
    return CiRun(
        provider="github",
        name="GitHub Actions",
        run_id=run_id,
        attempt=attempt,
        job=_first(env, "GITHUB_JOB"),
        sha=_pull_request_head(event) or _sha(_first(env, "GITHUB_SHA")),
        repository_url=f"{server}/{repository}" if repository else None,
        branch=_first(env, "GITHUB_HEAD_REF") or branch,
        tag=tag,
        run_url=run_url,
        project=repository_name(repository),
        default_branch=default_branch if isinstance(default_branch, str) else None,
        before_sha=_sha(before) if isinstance(before, str) else None,
    )


def _pull_request_head(event: Mapping[str, Any]) -> str | None:
    """On a ``pull_request`` run, the pull request's head commit: ``GITHUB_SHA`` is then the merge commit
    GitHub made for the run, which no branch holds, so no change could be attributed to it."""
    pull_request = event.get("pull_request")
    head = pull_request.get("head") if isinstance(pull_request, Mapping) else None
    sha = head.get("sha") if isinstance(head, Mapping) else None
    return _sha(sha) if isinstance(sha, str) else None


def _gitlab(env: Mapping[str, str], event: Mapping[str, Any]) -> CiRun:
    return CiRun(
        provider="gitlab",
        name="GitLab CI",
        run_id=_first(env, "CI_PIPELINE_ID"),
        attempt=_first(env, "CI_JOB_ID"),  # a retried job is a new job with a new id
        job=_first(env, "CI_JOB_NAME"),
        sha=_sha(_first(env, "CI_COMMIT_SHA")),
        repository_url=clean_url(_first(env, "CI_PROJECT_URL")),
        branch=_first(env, "CI_COMMIT_BRANCH", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"),
        tag=_first(env, "CI_COMMIT_TAG"),
        run_url=_first(env, "CI_JOB_URL"),
        environment=_first(env, "CI_ENVIRONMENT_NAME"),
        started_at=_first(env, "CI_JOB_STARTED_AT"),
        project=_first(env, "CI_PROJECT_NAME"),
        default_branch=_first(env, "CI_DEFAULT_BRANCH"),
        before_sha=_sha(_first(env, "CI_COMMIT_BEFORE_SHA")),
    )


def _circleci(env: Mapping[str, str], event: Mapping[str, Any]) -> CiRun:
    repository = clean_url(_first(env, "CIRCLE_REPOSITORY_URL"))
    return CiRun(
        provider="circleci",
        name="CircleCI",
        run_id=_first(env, "CIRCLE_WORKFLOW_ID"),
        attempt=_first(env, "CIRCLE_BUILD_NUM"),  # a rerun job gets a new build number
        job=_first(env, "CIRCLE_JOB"),
        sha=_sha(_first(env, "CIRCLE_SHA1")),
        repository_url=repository,
        branch=_first(env, "CIRCLE_BRANCH"),
        tag=_first(env, "CIRCLE_TAG"),
        run_url=_first(env, "CIRCLE_BUILD_URL"),
        project=_first(env, "CIRCLE_PROJECT_REPONAME") or repository_name(repository),
    )


def _jenkins(env: Mapping[str, str], event: Mapping[str, Any]) -> CiRun:
    repository = clean_url(_first(env, "GIT_URL", "GIT_URL_1"))
    branch, tag = ref_parts(_first(env, "CHANGE_BRANCH", "BRANCH_NAME", "GIT_BRANCH"))
    return CiRun(
        provider="jenkins",
        name="Jenkins",
        run_id=_first(env, "JOB_NAME"),
        attempt=_first(env, "BUILD_NUMBER"),  # a rebuild or replay is a new build number
        job=_first(env, "STAGE_NAME"),
        sha=_sha(_first(env, "GIT_COMMIT")),
        repository_url=repository,
        branch=branch,
        tag=_first(env, "TAG_NAME") or tag,
        run_url=_first(env, "BUILD_URL"),
        project=repository_name(repository) or repository_name(_first(env, "JOB_NAME")),
        before_sha=_sha(_first(env, "GIT_PREVIOUS_SUCCESSFUL_COMMIT")),
    )


def _buildkite(env: Mapping[str, str], event: Mapping[str, Any]) -> CiRun:
    build_url, job_id = _first(env, "BUILDKITE_BUILD_URL"), _first(env, "BUILDKITE_JOB_ID")
    step = _first(env, "BUILDKITE_STEP_KEY", "BUILDKITE_STEP_ID")
    parallel = _first(env, "BUILDKITE_PARALLEL_JOB")  # the index of a step's parallel jobs: each its own job
    return CiRun(
        provider="buildkite",
        name="Buildkite",
        run_id=_first(env, "BUILDKITE_BUILD_ID"),
        attempt=_first(env, "BUILDKITE_RETRY_COUNT") or "0",
        job=f"{step}#{parallel}" if step and parallel else step,
        sha=_sha(_first(env, "BUILDKITE_COMMIT")),
        repository_url=clean_url(_first(env, "BUILDKITE_REPO")),
        branch=_first(env, "BUILDKITE_BRANCH"),
        tag=_first(env, "BUILDKITE_TAG"),
        run_url=f"{build_url}#{job_id}" if build_url and job_id else build_url,
        project=_first(env, "BUILDKITE_PIPELINE_SLUG"),
        default_branch=_first(env, "BUILDKITE_PIPELINE_DEFAULT_BRANCH"),
    )


def _azure(env: Mapping[str, str], event: Mapping[str, Any]) -> CiRun:
    branch, tag = ref_parts(_first(env, "SYSTEM_PULLREQUEST_SOURCEBRANCH", "BUILD_SOURCEBRANCH"))
    server, project_id = _first(env, "SYSTEM_TEAMFOUNDATIONSERVERURI"), _first(env, "SYSTEM_TEAMPROJECTID")
    build_id = _first(env, "BUILD_BUILDID")
    run_url = None
    if server and project_id and build_id:
        run_url = f"{server.rstrip('/')}/{quote(project_id)}/_build/results?buildId={build_id}"
    repository = clean_url(_first(env, "SYSTEM_PULLREQUEST_SOURCEREPOSITORYURI", "BUILD_REPOSITORY_URI"))
    return CiRun(
        provider="azure",
        name="Azure Pipelines",
        run_id=build_id,
        attempt=_first(env, "SYSTEM_JOBATTEMPT") or "1",
        job=_first(env, "SYSTEM_JOBID"),
        sha=_sha(_first(env, "SYSTEM_PULLREQUEST_SOURCECOMMITID", "BUILD_SOURCEVERSION")),
        repository_url=repository,
        branch=branch,
        tag=tag,
        run_url=run_url,
        environment=_first(env, "ENVIRONMENT_NAME", "RELEASE_ENVIRONMENTNAME"),
        started_at=_first(env, "SYSTEM_PIPELINESTARTTIME"),
        project=repository_name(_first(env, "BUILD_REPOSITORY_NAME")) or repository_name(repository),
    )


def _bitbucket(env: Mapping[str, str], event: Mapping[str, Any]) -> CiRun:
    full_name, number = _first(env, "BITBUCKET_REPO_FULL_NAME"), _first(env, "BITBUCKET_BUILD_NUMBER")
    step = _first(env, "BITBUCKET_STEP_UUID")
    return CiRun(
        provider="bitbucket",
        name="Bitbucket Pipelines",
        run_id=number,
        attempt=step.strip("{}") if step else None,  # no attempt counter: the step is the unit
        sha=_sha(_first(env, "BITBUCKET_COMMIT")),
        repository_url=clean_url(_first(env, "BITBUCKET_GIT_HTTP_ORIGIN", "BITBUCKET_GIT_SSH_ORIGIN")),
        branch=_first(env, "BITBUCKET_BRANCH"),
        tag=_first(env, "BITBUCKET_TAG"),
        run_url=f"https://bitbucket.org/{full_name}/pipelines/results/{number}" if full_name and number else None,
        environment=_first(env, "BITBUCKET_DEPLOYMENT_ENVIRONMENT"),
        project=_first(env, "BITBUCKET_REPO_SLUG") or repository_name(full_name),
    )


# (provider, is it this CI?, reader), in detection order.
_PROVIDERS: tuple[tuple[str, Callable[[Mapping[str, str]], bool], Callable[..., CiRun]], ...] = (
    ("github", lambda env: env.get("GITHUB_ACTIONS") == "true", _github),
    ("gitlab", lambda env: env.get("GITLAB_CI") == "true", _gitlab),
    ("circleci", lambda env: env.get("CIRCLECI") == "true", _circleci),
    ("buildkite", lambda env: env.get("BUILDKITE") == "true", _buildkite),
    ("azure", lambda env: env.get("TF_BUILD", "").lower() == "true", _azure),
    ("bitbucket", lambda env: bool(env.get("BITBUCKET_BUILD_NUMBER")), _bitbucket),
    ("jenkins", lambda env: bool(env.get("JENKINS_URL")) and bool(env.get("BUILD_NUMBER")), _jenkins),
)
PROVIDERS = tuple(name for name, _, _ in _PROVIDERS)


def detect(env: Mapping[str, str], event: Mapping[str, Any] | None = None) -> CiRun | None:
    """The CI this process runs in, from its variables (``event``: GitHub's event payload, the JSON
    file ``GITHUB_EVENT_PATH`` names, for the pushed range and the default branch); None outside CI."""
    for _, matches, read in _PROVIDERS:
        if matches(env):
            return read(env, event or {})
    return None


def _id_part(value: str) -> str:
    return _ID_UNSAFE.sub("_", value)[:_ID_PART] or "_"


def idempotency_id(run: CiRun, *what: str) -> str | None:
    """The client id of what this job sends: the same CI run, attempt and job sending the same
    ``what`` (kind, project, environment, ...) again gets the same id, so the service stores it once;
    a retried job (a new attempt) gets a new one. None when the CI names no run.

    ``<provider>-<run>-<attempt>-<16 hex of a hash of all of it>``: at most 100 characters of
    ``[A-Za-z0-9_.:-]``, the service's client id alphabet.
    """
    if not run.run_id:
        return None
    attempt = run.attempt or "1"
    identity = "\x1f".join([run.provider, run.run_id, attempt, run.job or "", *what])
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    return f"{run.provider}-{_id_part(run.run_id)}-{_id_part(attempt)}-{digest}"
