"""Each CI's own variables for one deploy job, and what ``dora-insights`` must read from them.

Shared by the unit tests (detection) and tests/e2e/test_cli.py (the stored deployment): one place that
says, per CI, which variable carries the sha, the repository, the branch, the run URL, ...
(cli/README.md "CI variables" documents the same list).
"""

from __future__ import annotations

from dataclasses import dataclass

SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"
CIS = ("github", "gitlab", "circleci", "jenkins", "buildkite", "azure", "bitbucket")


@dataclass(frozen=True)
class Job:
    """A deploy job's variables and what they say."""

    variables: dict[str, str]
    repository_url: str
    branch: str
    run_url: str
    project: str
    environment: str | None  # None: the CI has no variable for it (the job passes --env)
    started_at: str | None  # as the CLI sends it, where the CI says when the job started
    source_name: str


def job(ci: str, *, org: str = "acme", name: str = "shop", run: str = "4242", attempt: int = 1) -> Job:
    """The variables of attempt ``attempt`` of run ``run`` deploying ``org/name`` from ``main`` on ``ci``."""
    if ci == "github":
        return Job(
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_REPOSITORY": f"{org}/{name}",
                "GITHUB_SHA": SHA,
                "GITHUB_REF": "refs/heads/main",
                "GITHUB_RUN_ID": run,
                "GITHUB_RUN_ATTEMPT": str(attempt),
                "GITHUB_JOB": "deploy",
            },
            repository_url=f"https://github.com/{org}/{name}",
            branch="main",
            run_url=f"https://github.com/{org}/{name}/actions/runs/{run}/attempts/{attempt}",
            project=name,
            environment=None,
            started_at=None,
            source_name="GitHub Actions",
        )
    if ci == "gitlab":
        job_id = f"{run}0{attempt}"  # a retried GitLab job is a new job, with a new id
        return Job(
            {
                "GITLAB_CI": "true",
                "CI_PIPELINE_ID": run,
                "CI_JOB_ID": job_id,
                "CI_JOB_NAME": "deploy",
                "CI_COMMIT_SHA": SHA,
                "CI_PROJECT_URL": f"https://gitlab.com/{org}/{name}",
                "CI_PROJECT_NAME": name,
                "CI_COMMIT_BRANCH": "main",
                "CI_DEFAULT_BRANCH": "main",
                "CI_JOB_URL": f"https://gitlab.com/{org}/{name}/-/jobs/{job_id}",
                "CI_ENVIRONMENT_NAME": "production",
                "CI_JOB_STARTED_AT": "2024-03-01T11:50:00Z",
            },
            repository_url=f"https://gitlab.com/{org}/{name}",
            branch="main",
            run_url=f"https://gitlab.com/{org}/{name}/-/jobs/{job_id}",
            project=name,
            environment="production",
            started_at="2024-03-01T11:50:00.000Z",
            source_name="GitLab CI",
        )
    if ci == "circleci":
        build = f"{run}0{attempt}"
        return Job(
            {
                "CIRCLECI": "true",
                "CIRCLE_WORKFLOW_ID": f"wf-{run}",
                "CIRCLE_BUILD_NUM": build,
                "CIRCLE_JOB": "deploy",
                "CIRCLE_SHA1": SHA,
                "CIRCLE_REPOSITORY_URL": f"git@github.com:{org}/{name}.git",
                "CIRCLE_PROJECT_REPONAME": name,
                "CIRCLE_BRANCH": "main",
                "CIRCLE_BUILD_URL": f"https://circleci.com/gh/{org}/{name}/{build}",
            },
            repository_url=f"git@github.com:{org}/{name}.git",
            branch="main",
            run_url=f"https://circleci.com/gh/{org}/{name}/{build}",
            project=name,
            environment=None,
            started_at=None,
            source_name="CircleCI",
        )
    if ci == "jenkins":
        build = f"{run}0{attempt}"
        return Job(
            {
                "JENKINS_URL": "https://jenkins.example.com/",
                "JOB_NAME": f"{name}-deploy",
                "BUILD_NUMBER": build,
                "BUILD_URL": f"https://jenkins.example.com/job/{name}-deploy/{build}/",
                "GIT_COMMIT": SHA,
                # Clone URLs may carry a token: it must never reach the service.
                "GIT_URL": f"https://ci-bot:s3cr3t-token@github.com/{org}/{name}.git",
                "GIT_BRANCH": "origin/main",
            },
            repository_url=f"https://github.com/{org}/{name}.git",
            branch="main",
            run_url=f"https://jenkins.example.com/job/{name}-deploy/{build}/",
            project=name,
            environment=None,
            started_at=None,
            source_name="Jenkins",
        )
    if ci == "buildkite":
        return Job(
            {
                "BUILDKITE": "true",
                "BUILDKITE_BUILD_ID": f"bk-{run}",
                "BUILDKITE_JOB_ID": f"job-{run}-{attempt}",
                "BUILDKITE_RETRY_COUNT": str(attempt - 1),
                "BUILDKITE_STEP_KEY": "deploy",
                "BUILDKITE_COMMIT": SHA,
                "BUILDKITE_REPO": f"git@github.com:{org}/{name}.git",
                "BUILDKITE_BRANCH": "main",
                "BUILDKITE_PIPELINE_SLUG": name,
                "BUILDKITE_PIPELINE_DEFAULT_BRANCH": "main",
                "BUILDKITE_BUILD_URL": f"https://buildkite.com/{org}/{name}/builds/{run}",
            },
            repository_url=f"git@github.com:{org}/{name}.git",
            branch="main",
            run_url=f"https://buildkite.com/{org}/{name}/builds/{run}#job-{run}-{attempt}",
            project=name,
            environment=None,
            started_at=None,
            source_name="Buildkite",
        )
    if ci == "azure":
        return Job(
            {
                "TF_BUILD": "True",
                "BUILD_BUILDID": run,
                "SYSTEM_JOBATTEMPT": str(attempt),
                "SYSTEM_JOBID": "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
                "BUILD_SOURCEVERSION": SHA,
                "BUILD_REPOSITORY_URI": f"https://dev.azure.com/{org}/{name}/_git/{name}",
                "BUILD_REPOSITORY_NAME": name,
                "BUILD_SOURCEBRANCH": "refs/heads/main",
                "SYSTEM_TEAMFOUNDATIONSERVERURI": f"https://dev.azure.com/{org}/",
                "SYSTEM_TEAMPROJECTID": "0d2a5e06",
                "ENVIRONMENT_NAME": "production",
                "SYSTEM_PIPELINESTARTTIME": "2024-03-01 11:50:00+00:00",
            },
            repository_url=f"https://dev.azure.com/{org}/{name}/_git/{name}",
            branch="main",
            run_url=f"https://dev.azure.com/{org}/0d2a5e06/_build/results?buildId={run}",
            project=name,
            environment="production",
            started_at="2024-03-01T11:50:00.000Z",
            source_name="Azure Pipelines",
        )
    if ci == "bitbucket":
        return Job(
            {
                "BITBUCKET_BUILD_NUMBER": run,
                "BITBUCKET_STEP_UUID": f"{{6a3f-{attempt}}}",
                "BITBUCKET_COMMIT": SHA,
                "BITBUCKET_GIT_HTTP_ORIGIN": f"http://bitbucket.org/{org}/{name}",
                "BITBUCKET_REPO_FULL_NAME": f"{org}/{name}",
                "BITBUCKET_REPO_SLUG": name,
                "BITBUCKET_BRANCH": "main",
                "BITBUCKET_DEPLOYMENT_ENVIRONMENT": "production",
            },
            repository_url=f"http://bitbucket.org/{org}/{name}",
            branch="main",
            run_url=f"https://bitbucket.org/{org}/{name}/pipelines/results/{run}",
            project=name,
            environment="production",
            started_at=None,
            source_name="Bitbucket Pipelines",
        )
    raise ValueError(ci)
