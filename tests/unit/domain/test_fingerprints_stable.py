"""A draft's fingerprint is stored: it must not move under records already written.

Every deployment and failure event is stored with ``body_hash``, a fingerprint of the request; a repeat is
the same request when its fingerprint matches (200), another request under the same id when not (409).
Items of a native batch without an id are keyed by the fingerprint, and DX rows without a reference id get
their id from it. The fingerprint is a canonical dump of the draft, so adding a field to a draft, renaming
one or changing how a value is normalised moves every fingerprint: after the upgrade a client's retry of
anything stored before is a 409, and a resent batch or backfill is stored twice. This test pins the
fingerprints of fixed drafts. When it fails: keep the dump as it was (leave a new field out of it while it
holds its default), or, where a change must move it, add the earlier form to
``Draft.stored_fingerprints`` so that records written before still match (as 1dd4dc8 and dc204e7 did;
batch keys and DX row ids cannot be matched that way).
"""

from __future__ import annotations

from datetime import UTC, datetime

from dora_insights.domain.failures import FailureDraft
from dora_insights.domain.model import DeploymentDraft

FULL_DEPLOYMENT = DeploymentDraft.model_validate(
    {
        "client_id": "deploy-42",
        "project": "shop",
        "environment": "production",
        "finished_at": datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
        "started_at": datetime(2024, 3, 1, 11, 30, tzinfo=UTC),
        "version": "1.4.2",
        "state": "Failed",
        "had_guided_failure": True,
        "rollback": True,
        "fixes": "1.4.1",
        "tenant": "acme",
        "channel": "hotfix",
        "team": "payments",
        "tenant_tags": ["Region/EU"],
        "tags": ["team:a", "tier:1"],
        "commit_sha": "0123456789abcdef0123456789abcdef01234567",
        "repository": "github.com/acme/shop",
        "merge_commit_shas": ["89abcdef0123456789abcdef0123456789abcdef"],
        "integration_branch": "main",
        "source_name": "ci",
        "source_url": "https://ci.example.com/runs/42",
        "metadata": {"runner": "linux", "attempt": 2},
        "release_created_at": datetime(2024, 3, 1, 9, 0, tzinfo=UTC),
    }
)
MINIMAL_DEPLOYMENT = DeploymentDraft.model_validate(
    {"project": "shop", "finished_at": datetime(2024, 3, 1, 12, 0, tzinfo=UTC)}
)
FULL_FAILURE = FailureDraft.model_validate(
    {
        "client_id": "incident-7",
        "projects": ["shop", "web"],
        "environment": "production",
        "name": "checkout down",
        "severity": "SEV1",
        "started_at": datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
        "finished_at": datetime(2024, 3, 1, 13, 0, tzinfo=UTC),
        "deployment_id": "Deployments-9",
        "commit_sha": "0123456789ab",
        "repository": "github.com/acme/shop",
        "team": "payments",
        "version": "1.4.2",
        "tags": ["sev:1"],
    }
)
MINIMAL_FAILURE = FailureDraft.model_validate(
    {"projects": ["shop"], "started_at": datetime(2024, 3, 1, 12, 0, tzinfo=UTC)}
)

# (draft, fingerprint as sent, fingerprint with the default environment "production"), recorded.
PINNED = {
    "full deployment": (
        FULL_DEPLOYMENT,
        "8f7c1fe0b0984edc0c9f8eb0b13774287d2bff7e59eab37edc4a41930eba0187",
        "8f7c1fe0b0984edc0c9f8eb0b13774287d2bff7e59eab37edc4a41930eba0187",
    ),
    "minimal deployment": (
        MINIMAL_DEPLOYMENT,
        "9be6e776b970b456e638aab492f79d0d45e6a69137329fc0fb0a594b7f545a0d",
        "7b3494b8525c9c6d54c73cff7aed1183191cadb0b9e1eee78054d19db668025f",
    ),
    "full failure": (
        FULL_FAILURE,
        "866aca8d8adaccfc5089ea7bf478191afd5552eaf66926945e398ffeaaf33be9",
        "866aca8d8adaccfc5089ea7bf478191afd5552eaf66926945e398ffeaaf33be9",
    ),
    "minimal failure": (
        MINIMAL_FAILURE,
        "7a6efd3b888de4a13778393a44c4ba47976dd18f989d54c013b2db1354706433",
        "672ae312173acf5c55be40a32863924d89e41eade9e7add7e1ade6787b561d54",
    ),
}


def test_fingerprints_of_fixed_drafts_never_move() -> None:
    moved = {
        name: (draft.fingerprint(), draft.fingerprint("production"))
        for name, (draft, as_sent, with_default) in PINNED.items()
        if (draft.fingerprint(), draft.fingerprint("production")) != (as_sent, with_default)
    }
    assert not moved, f"fingerprints moved (see the module docstring before recording these): {moved}"


def test_a_draft_without_a_version_also_matches_what_was_stored_for_a_blank_one() -> None:
    """Before dc204e7 a blank ``version`` was stored as "" and hashed so: the same request now (version
    None) still matches those records, and a draft with a version matches no blank form."""
    earlier = MINIMAL_DEPLOYMENT.model_copy(update={"version": ""})
    accepted = MINIMAL_DEPLOYMENT.stored_fingerprints("production")
    assert accepted[0] == MINIMAL_DEPLOYMENT.fingerprint("production")
    assert {earlier.fingerprint(), earlier.fingerprint("production"), MINIMAL_DEPLOYMENT.fingerprint()} <= set(accepted)
    versioned = FULL_FAILURE.stored_fingerprints("production")
    assert versioned[0] == FULL_FAILURE.fingerprint("production")
    assert set(versioned) == {FULL_FAILURE.fingerprint("production"), FULL_FAILURE.fingerprint()}
