"""An Orlo import whose write phase fails after its package claims withdraws the claims of the releases
it did not store, and the deployments it wrote for them (API.md "Dialect: Orlo"), through the real
handler against moto.

An import claims the package ids of its fresh releases (pattern 94 pointers, conditional), then per
release writes its deployments and the release. A 503 in between used to leave the pointers of the
releases not stored yet: the same document sent again completed it, but a changed document (its
release id is derived from its content, so any fix changes it) reusing those package ids was refused
with 400 "already belongs to another release" for good, though that release was never stored. The
failure is injected as the neighbouring Orlo tests inject it: the release's transaction cancelled
for contention (``_release_writes_contended``, a 503 after the retries), or ``deployments.ingest``
raising ``WriteContendedError``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api
from tests.integration.test_orlo import _imported, _release_writes_contended, call, ok

SPACE = "Spaces-1"
IMPORT = "/orlo/releases/import"


def running(rid: str, pid: str) -> dict[str, Any]:
    """A release document whose one package is IN_PROGRESS: it makes no deployment."""
    doc = _imported(rid, pid)
    doc["packages"][0].update(status="IN_PROGRESS", ftime=None)
    return {**doc, "ftime": None}


def deployments_of(api: Api) -> list[dict[str, Any]]:
    listed = api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": SPACE}, key=ADMIN_KEY)
    return list(ok(listed)["items"])


def refused_with_503(api: Api, body: Any) -> None:
    refused = call(api, "POST", IMPORT, body=body)
    assert refused.status == 503 and refused.headers.get("Retry-After") == "1", refused.body


def test_a_changed_document_reusing_the_package_ids_imports_after_a_failed_release_write(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Release R's write stays contended (503) after its package P was claimed: P's pointer is withdrawn,
    so the corrected document (another release id, the same package id) imports (before: 400)."""
    rid, changed, pid = (
        "61616161-6161-6161-6161-616161616161",
        "62626262-6262-6262-6262-626262626262",
        "dddddddd-dddd-dddd-dddd-000000000001",
    )
    attempts = _release_writes_contended(monkeypatch, None)
    refused_with_503(api, [running(rid, pid)])
    assert attempts  # the failure came from the release's write, after the claim
    monkeypatch.undo()
    assert store.orlo().get(SPACE, rid) is None

    imported = call(api, "POST", IMPORT, body=[running(changed, pid)])

    assert imported.status == 200, imported.body  # before: 400 "package id ... already belongs to another release"
    assert imported.body["releases"] == [changed]
    assert store.orlo().package_owner(SPACE, pid) == changed
    (package,) = ok(call(api, "GET", "/orlo/packages/{pid}", path_params={"pid": pid}))["packages"]
    assert package["release_id"] == changed


def test_a_changed_document_imports_after_a_failed_deployment_write(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 503 comes from the first deployment of R's stopped package: nothing of R stays, and the changed
    document stores its release, its pointer and its package's deployment under its own release id."""
    from dora_insights.errors import WriteContendedError
    from dora_insights.logic import deployments

    rid, changed, pid = (
        "63636363-6363-6363-6363-636363636363",
        "64646464-6464-6464-6464-646464646464",
        "dddddddd-dddd-dddd-dddd-000000000002",
    )

    def contended(*args: Any, **kwargs: Any) -> Any:
        raise WriteContendedError("the deployment could not be written now, for concurrent writes; retry the request")

    monkeypatch.setattr(deployments, "ingest", contended)
    refused_with_503(api, [_imported(rid, pid)])
    monkeypatch.undo()
    assert deployments_of(api) == []

    assert ok(call(api, "POST", IMPORT, body=[_imported(changed, pid)]))["releases"] == [changed]
    (deployment,) = deployments_of(api)
    assert deployment["metadata"]["orlo_release_id"] == changed
    assert store.orlo().package_owner(SPACE, pid) == changed


def test_the_same_document_retried_after_the_failure_imports_once(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R's deployment is written, then R's write stays contended: its claim and its deployment are
    withdrawn, and the same document sent again writes the deployment again (its client id, so the same
    id) and stores R, once."""
    rid, pid = "65656565-6565-6565-6565-656565656565", "dddddddd-dddd-dddd-dddd-000000000003"
    _release_writes_contended(monkeypatch, None)
    refused_with_503(api, [_imported(rid, pid)])
    monkeypatch.undo()
    assert store.orlo().package_owner(SPACE, pid) is None
    assert deployments_of(api) == []

    for _ in range(2):  # the retry, and a re-import after it
        assert ok(call(api, "POST", IMPORT, body=[_imported(rid, pid)]))["releases"] == [rid]
        (only,) = deployments_of(api)
        assert only["id"].startswith(f"orlo:{pid}:")
    assert store.orlo().package_owner(SPACE, pid) == rid
    assert store.orlo().get(SPACE, rid) is not None


def test_releases_stored_before_the_failure_keep_their_claims(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document of two releases whose second release's write fails: the first is stored and keeps its
    package's pointer; only the second's is withdrawn, so a changed second release imports on its own."""
    first, second, changed = (
        "66666666-6666-6666-6666-666666666666",
        "67676767-6767-6767-6767-676767676767",
        "68686868-6868-6868-6868-686868686868",
    )
    p1, p2 = "dddddddd-dddd-dddd-dddd-000000000004", "dddddddd-dddd-dddd-dddd-000000000005"
    from dora_insights.dal.orlo import OrloStore
    from dora_insights.domain.orlo import OrloRelease

    create = OrloStore.create

    def second_fails(self: OrloStore, space_id: str, release: OrloRelease) -> bool:
        if release.id == second:  # from here on, the release's transaction stays contended (503)
            _release_writes_contended(monkeypatch, None)
        return create(self, space_id, release)

    monkeypatch.setattr(OrloStore, "create", second_fails)
    refused_with_503(api, [running(first, p1), running(second, p2)])
    monkeypatch.undo()
    assert store.orlo().get(SPACE, first) is not None and store.orlo().get(SPACE, second) is None
    assert store.orlo().package_owners(SPACE, [p1, p2]) == {p1: first}

    assert ok(call(api, "POST", IMPORT, body=[running(changed, p2)]))["releases"] == [changed]
    assert store.orlo().package_owners(SPACE, [p1, p2]) == {p1: first, p2: changed}


def test_a_failed_import_keeps_the_pointers_a_concurrent_import_of_the_same_document_claimed(store: Any) -> None:
    """Two imports of one document at once (a client retrying a slow request): both claim the package,
    one fails and withdraws its claim, the other stores the release. The pointer stays with the stored
    release, so its package is found (a single claim id on the pointer, the last claimant's, let the
    failed import delete it: the package answered 404 for good)."""
    from dora_insights.domain import orlo as domain

    release = domain.import_releases(
        [
            domain.ImportedRelease(
                platforms=("web",), user="ci", team="shop", packages=(domain.ImportedPackage(name="api", version="1"),)
            )
        ],
        id_seed=SPACE,
    )[0]
    (package,) = release.packages
    repo = store.orlo()
    assert repo.claim_packages(SPACE, [release], claim="first") is None
    assert repo.claim_packages(SPACE, [release], claim="second") is None
    repo.withdraw_claims(SPACE, [release], "second")  # the second import failed
    assert repo.package_owner(SPACE, package.id) == release.id
    assert repo.create(SPACE, release)  # the first stores the release
    repo.withdraw_claims(SPACE, [release], "first")  # a late withdrawal: the release is stored, nothing goes
    assert repo.package_owner(SPACE, package.id) == release.id
    other = domain.import_releases(
        [
            domain.ImportedRelease(
                platforms=("web",), user="ci", team="cart", packages=(domain.ImportedPackage(name="ui", version="2"),)
            )
        ],
        id_seed=SPACE,
    )[0]
    assert repo.claim_packages(SPACE, [other], claim="only") is None
    repo.withdraw_claims(SPACE, [other], "only")  # the last claim withdrawn: the pointer goes
    assert repo.package_owner(SPACE, other.packages[0].id) is None


def test_a_changed_document_naming_the_package_imports_after_a_failed_release_write(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R's stopped package P made its deployment, then R's write stayed contended (503). The corrected
    document (another release id, P on the same platform) imports, and its deployment is the one counted
    (before: 409, the deployment's id was used with R's values, until it was deleted by hand)."""
    rid, changed, pid = (
        "69696969-6969-6969-6969-696969696969",
        "6a6a6a6a-6a6a-6a6a-6a6a-6a6a6a6a6a6a",
        "dddddddd-dddd-dddd-dddd-000000000006",
    )
    _release_writes_contended(monkeypatch, None)
    refused_with_503(api, [_imported(rid, pid)])
    monkeypatch.undo()

    assert ok(call(api, "POST", IMPORT, body=[_imported(changed, pid)]))["releases"] == [changed]
    (deployment,) = deployments_of(api)
    assert deployment["metadata"]["orlo_release_id"] == changed


def test_a_document_dropping_the_package_after_a_failed_import_leaves_it_uncounted(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed import's package P is dropped from the corrected document: nothing of P is stored or
    counted (before: P's deployment stayed, counted in every figure, with no release naming it). The
    deletion is recorded, naming the key whose import it was."""
    rid, changed, pid, other = (
        "6b6b6b6b-6b6b-6b6b-6b6b-6b6b6b6b6b6b",
        "6c6c6c6c-6c6c-6c6c-6c6c-6c6c6c6c6c6c",
        "dddddddd-dddd-dddd-dddd-000000000007",
        "dddddddd-dddd-dddd-dddd-000000000008",
    )
    _release_writes_contended(monkeypatch, None)
    refused_with_503(api, [_imported(rid, pid)])
    monkeypatch.undo()

    assert ok(call(api, "POST", IMPORT, body=[_imported(changed, other)]))["releases"] == [changed]
    (deployment,) = deployments_of(api)
    assert deployment["metadata"]["orlo_package_id"] == other
    withdrawn = f"orlo:{pid}:{deployment['id'].rsplit(':', 1)[1]}"
    records = api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}/corrections",
        path_params={"spaceId": SPACE, "deploymentId": withdrawn},
        key=ADMIN_KEY,
    )
    (record,) = ok(records)["items"]
    assert record["action"] == "delete" and record["removed"]["metadata"]["orlo_release_id"] == rid
    assert "ApiKeys-" in record["actor"]


def _claimed_by_another_import(monkeypatch: pytest.MonkeyPatch, *, stale_check: bool) -> None:
    """Before R's failing import withdraws anything, another import of the same document claims R's
    packages (a client retrying the slow request). ``stale_check``: the withdrawal's own read of the
    pointers comes too early to see that claim, so only its transaction's condition can."""
    from dora_insights.dal.orlo import OrloStore

    withdraw = OrloStore.withdraw_claims

    def claimed_first(self: OrloStore, space_id: str, releases: Any, claim: str) -> None:
        assert self.claim_packages(space_id, releases, claim="the-other-import") is None
        withdraw(self, space_id, releases, claim)

    monkeypatch.setattr(OrloStore, "withdraw_claims", claimed_first)
    if stale_check:
        monkeypatch.setattr(OrloStore, "package_owners", lambda self, space_id, ids: {})


@pytest.mark.parametrize("stale_check", [False, True], ids=["read", "transaction"])
def test_a_failed_import_keeps_the_deployments_another_import_of_the_document_holds(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch, stale_check: bool
) -> None:
    """The other import of the same document holds R's package when the failed one withdraws: the
    deployment it re-uses stays (its release will be stored with it), whether the withdrawal's read sees
    the claim or only its transaction's condition does."""
    rid = "6d6d6d6d-6d6d-6d6d-6d6d-6d6d6d6d6d6d" if stale_check else "6e6e6e6e-6e6e-6e6e-6e6e-6e6e6e6e6e6e"
    pid = f"dddddddd-dddd-dddd-dddd-00000000000{9 if stale_check else 'a'}"
    _release_writes_contended(monkeypatch, None)
    _claimed_by_another_import(monkeypatch, stale_check=stale_check)
    refused_with_503(api, [_imported(rid, pid)])
    monkeypatch.undo()

    (kept,) = deployments_of(api)
    assert kept["id"].startswith(f"orlo:{pid}:")
    assert store.orlo().package_owner(SPACE, pid) == rid  # the other import's claim
    assert ok(call(api, "POST", IMPORT, body=[_imported(rid, pid)]))["releases"] == [rid]  # it completes
    assert [d["id"] for d in deployments_of(api)] == [kept["id"]]
