"""The catalogue (``/api/{spaceId}/projects`` and the other Octopus-shaped lists) and what registers in it.

Refused creates leave no name behind: a deployment whose id, reference_id or idempotency key holds other
values (native, native batch items, DX, Datadog) is a 409 before any name it brings is registered, and only
the refused batch items' own names stay out. The lists page in Octopus' shape (``Page.Next`` /
``Page.Previous`` links), take Octopus' ``partialName`` and ``ids`` filters (other parameters are ignored),
never answer a hostile value with a 5xx and leak nothing of another space. Names in any case and through
every dialect are one entity; a report's ``TenantTags`` match whatever case the tag set's name was sent in.
``DORA_PROPERTY_SEEDS=a:b`` widens the random histories."""

from __future__ import annotations

import base64
import random
import unicodedata
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.integration.test_code_deployments_property import gh, gh_status, gl, gl_deployment, sha
from tests.support.fixtures import OTHER_KEY
from tests.support.native import list_all
from tests.support.seeds import seeds

SP = {"spaceId": "Spaces-1"}
NATIVE = "/api/{spaceId}/deployments"
BATCH = "/api/{spaceId}/deployments/batch"
FAILURES = "/api/{spaceId}/failures"
DD = "/api/v2/dora/deployment"
DD_FAILURE = "/api/v2/dora/failure"
DX_CREATE = "/api/deployments.create"
DX_UPSERT = "/api/deployments.upsert"


LISTS = ("projects", "environments", "tenants", "projectgroups", "channels", "tenanttagsets")


def _list(
    api: Api, segment: str, query: dict[str, str] | None = None, *, space: str = "Spaces-1", key: str = ADMIN_KEY
) -> Any:
    return api.call("GET", f"/api/{{spaceId}}/{segment}", path_params={"spaceId": space}, query=query, key=key)


def _names(api: Api, segment: str) -> list[str]:
    r = _list(api, segment, {"take": "1000"})
    assert r.status == 200, r.body
    return [i["Name"] for i in r.body["Items"]]


def _all_names(api: Api) -> dict[str, list[str]]:
    found = {segment: _names(api, segment) for segment in LISTS}
    found["tenanttags"] = [
        t["CanonicalTagName"]
        for s in _list(api, "tenanttagsets", {"take": "1000"}).body["Items"]
        for t in (s.get("Tags") or [])
    ]
    return found


def _ghosts(api: Api) -> dict[str, list[str]]:
    """Every catalogue name containing 'ghost' (what a refused request named)."""
    return {
        k: [n for n in v if "ghost" in n.casefold()]
        for k, v in _all_names(api).items()
        if any("ghost" in n.casefold() for n in v)
    }


def _native(api: Api, expect: int | None = 201, **fields: Any) -> Any:
    body = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T11:00:00Z", **fields}
    r = api.call("POST", NATIVE, path_params=SP, body=body, key=ADMIN_KEY)
    if expect is not None:
        assert r.status == expect, (r.status, r.body)
    return r


GHOST = {
    "project": "ghost-project",
    "environment": "ghost-env",
    "tenant": "ghost-tenant",
    "team": "ghost-team",
    "channel": "ghost-channel",
    "tenant_tags": ["GhostSet/ghost-tag"],
}


# --------------------------------------------------------------------------- refused creates leave nothing


def test_native_deployment_id_conflict_409_registers_no_catalogue_entity(api: Api) -> None:
    """A native deployment whose ``id`` is stored with other values is a 409 (API.md, batch/ids). The refused
    request must not leave its project, environment, tenant, team, channel or tenant tags in the catalogue
    (API.md promises this for a failure event's id, 'a 409 before any project or environment it names is
    registered'; a deployment's refused create stores nothing either: 'the write refused stored nothing')."""
    _native(api, id="deploy-conflict-0001")
    refused = _native(api, expect=409, id="deploy-conflict-0001", **GHOST)
    assert refused.status == 409
    assert _ghosts(api) == {}, "a refused (409) create registered catalogue entities"


def test_native_batch_item_conflict_registers_no_catalogue_entity(api: Api) -> None:
    _native(api, id="batch-conflict-0001")
    body = {
        "deployments": [
            {"id": "batch-conflict-0001", "finished_at": "2024-03-01T11:00:00Z", **GHOST},
            {"project": "shop", "environment": "production", "finished_at": "2024-03-01T11:05:00Z"},
        ]
    }
    r = api.call("POST", BATCH, path_params=SP, body=body, key=ADMIN_KEY)
    assert r.status == 200, r.body
    assert [x["status"] for x in r.body["results"]] == [409, 201], r.body
    assert _ghosts(api) == {}, "a batch item refused with 409 registered catalogue entities"


def test_dx_reference_id_exists_registers_no_catalogue_entity(api: Api) -> None:
    body = {
        "reference_id": "dx-ref-0001",
        "service": "shop",
        "deployed_at": 1709290000,
        "commit_sha": sha(1),
        "repository": "acme/shop",
    }
    assert api.call("POST", DX_CREATE, body=body, key=ADMIN_KEY).body["ok"]
    again = api.call(
        "POST", DX_CREATE, body={**body, "service": "ghost-service", "environment": "ghost-env"}, key=ADMIN_KEY
    )
    assert again.status == 409 and again.body.get("error") == "reference_id_exists", (again.status, again.body)
    assert _ghosts(api) == {}, "a DX create refused with reference_id_exists registered catalogue entities"


def test_datadog_id_conflict_registers_no_catalogue_entity(api: Api) -> None:
    ns = 1709290000 * 10**9
    body = {
        "data": {
            "attributes": {
                "service": "shop",
                "finished_at": ns,
                "started_at": ns - 60 * 10**9,
                "id": "dd-deployment-conflict-1",
            }
        }
    }
    first = api.call("POST", DD, body=body, headers={"DD-API-KEY": ADMIN_KEY})
    assert first.status == 200, first.body
    body["data"]["attributes"].update(
        {"service": "ghost-service", "env": "ghost-env", "team": "ghost-team", "custom_tags": ["tenant:ghost-tenant"]}
    )
    again = api.call("POST", DD, body=body, headers={"DD-API-KEY": ADMIN_KEY})
    assert again.status == 409, (again.status, again.body)
    assert _ghosts(api) == {}, "a Datadog deployment refused with 409 registered catalogue entities"


# --------------------------------------------------------------------------- paging and the list's shape


@pytest.mark.parametrize("seed", seeds([0, 1, 2]))
def test_pages_never_repeat_or_skip_while_deployments_register_new_entities(api: Api, seed: int) -> None:
    """The catalogue lists by id number and new entities take the next number: registrations between two
    pages land at the tail, so walking the pages gives every entity that existed at the start once, in order
    (API.md: pages count from the head as it is at each request; nothing moves to the head here)."""
    rng = random.Random(seed)
    for n in range(rng.randint(5, 12)):
        _native(api, project=f"p{seed}-{n}", finished_at=f"2024-03-01T10:{n:02d}:00Z")
    before = _names(api, "projects")
    take = rng.randint(1, 4)
    seen: list[str] = []
    skip = 0
    extra = 0
    while True:
        page = _list(api, "projects", {"skip": str(skip), "take": str(take)})
        assert page.status == 200
        assert page.body["ItemsPerPage"] == take
        items = [i["Name"] for i in page.body["Items"]]
        assert len(items) <= take
        seen += items
        if not items:
            break
        skip += take
        for _ in range(rng.randint(0, 2)):  # new projects, some in another case of an existing one
            name = rng.choice([f"new{seed}-{extra}", rng.choice(before).upper()])
            _native(api, project=name, finished_at=f"2024-03-01T11:{extra % 60:02d}:00Z")
            extra += 1
    assert len(seen) == len(set(seen)), f"a name repeated across pages: {seen}"
    assert seen[: len(before)] == before
    assert seen == _names(api, "projects")[: len(seen)]
    ids = [i["Id"] for i in _list(api, "projects", {"take": "1000"}).body["Items"]]
    assert ids == [f"Projects-{n}" for n in range(1, len(ids) + 1)]


def test_collection_shape_and_types(api: Api) -> None:
    _native(api, tenant="acme", team="payments", tenant_tags=["Tier/Gold"])
    for segment in LISTS:
        r = _list(api, segment)
        assert r.status == 200
        body = r.body
        for field, kind in (
            ("ItemType", str),
            ("TotalResults", int),
            ("ItemsPerPage", int),
            ("NumberOfPages", int),
            ("LastPageNumber", int),
            ("Items", list),
            ("Links", dict),
        ):
            assert isinstance(body[field], kind) and not isinstance(body[field], bool), (segment, field, body[field])
        assert body["ItemsPerPage"] == 30 and body["TotalResults"] == len(body["Items"]) == 1
        item = body["Items"][0]
        assert isinstance(item["Id"], str) and item["SpaceId"] == "Spaces-1" and isinstance(item["Name"], str)
        for link in ("Self", "Template", "Page.All", "Page.Current", "Page.Last"):
            assert body["Links"][link].startswith(f"/api/Spaces-1/{segment}"), (segment, link, body["Links"])


def test_links_name_the_next_and_previous_pages(api: Api) -> None:
    """Octopus collections carry ``Page.Next`` while a later page exists and ``Page.Previous`` after the first
    (Octopus' ResourceCollection; Octopus clients follow ``Page.Next``). Not in the reference's one-page
    example, so this records what a client of Octopus would expect."""
    for n in range(5):
        _native(api, project=f"p{n}")
    middle = _list(api, "projects", {"skip": "2", "take": "2"}).body
    assert middle["Links"].get("Page.Next") == "/api/Spaces-1/projects?skip=4&take=2", middle["Links"]
    assert middle["Links"].get("Page.Previous") == "/api/Spaces-1/projects?skip=0&take=2", middle["Links"]
    last = _list(api, "projects", {"skip": "4", "take": "2"}).body
    assert "Page.Next" not in last["Links"]


@pytest.mark.parametrize(
    "query",
    [
        {"skip": "2147483647"},
        {"take": "2147483647"},
        {"skip": "2147483647", "take": "2147483647"},
        {"skip": "1", "take": "1", "name": "x" * 10000},  # no filter of Octopus' project list: ignored
        {"skip": "0", "take": "2", "clonedFromProjectId": "Projects-9", "partialname": "zzz"},
    ],
)
def test_hostile_but_valid_query_values_answer_a_page_not_a_5xx(api: Api, query: dict[str, str]) -> None:
    for n in range(3):
        _native(api, project=f"p{n}")
    r = _list(api, "projects", query)
    assert r.status == 200, (r.status, r.body)
    assert r.body["TotalResults"] == 3
    skip, take = int(query.get("skip", "0")), int(query.get("take", "30"))
    assert [i["Name"] for i in r.body["Items"]] == ["p0", "p1", "p2"][skip : skip + take]
    assert r.body["NumberOfPages"] >= 1 and r.body["LastPageNumber"] == r.body["NumberOfPages"] - 1


@pytest.mark.parametrize(
    "query",
    [
        {"skip": "-1"},
        {"take": "0"},
        {"take": "-5"},
        {"skip": "2147483648"},
        {"take": "1e3"},
        {"skip": "0x10"},
        {"take": "１０"},
        {"take": "٣"},
        {"skip": "9" * 5000},
        {"take": ""},
    ],
)
def test_bad_paging_values_are_an_octopus_400(api: Api, query: dict[str, str]) -> None:
    _native(api)
    r = _list(api, "environments", query)
    assert r.status == 400, (query, r.status, r.body)
    assert isinstance(r.body.get("ErrorMessage"), str) and isinstance(r.body.get("Errors"), list), r.body


def test_another_spaces_lists_are_404_and_leak_nothing(api: Api, other_space: str) -> None:
    _native(api, project="mine-only")
    r2 = api.call(
        "POST",
        NATIVE,
        path_params={"spaceId": other_space},
        body={"project": "theirs-only", "environment": "production", "finished_at": "2024-03-01T11:00:00Z"},
        key=OTHER_KEY,
    )
    assert r2.status == 201
    for segment in LISTS:
        r = _list(api, segment, space=other_space, key=ADMIN_KEY)
        assert r.status == 404, (segment, r.status, r.body)
        assert "theirs-only" not in str(r.body)
        unknown = _list(api, segment, space="Spaces-999", key=ADMIN_KEY)
        assert unknown.status == r.status  # the same answer as a space that does not exist
        assert unknown.body["ErrorMessage"].replace("Spaces-999", other_space) == r.body["ErrorMessage"]
    assert _names(api, "projects") == ["mine-only"]
    # the filter of another space's id names this space's entity of that number, never theirs
    theirs = api.call("GET", NATIVE, path_params=SP, query={"project": "theirs-only"}, key=ADMIN_KEY)
    assert theirs.status == 200 and theirs.body["items"] == []


# --------------------------------------------------------------------------- names in other spellings


@pytest.mark.parametrize("seed", seeds([0, 1, 2]))
def test_names_in_any_case_are_one_entity_and_filters_agree_with_the_catalogue(api: Api, seed: int) -> None:
    """METRICS §1 / API.md: a name in any case is the entity first registered (case-folded), so ``Straße``,
    ``STRASSE`` and ``strasse`` are one project; the catalogue and every filter must agree whichever spelling
    is used, also for spellings the catalogue keeps apart (NFC vs NFD): a filter by a name finds exactly the
    deployments of the entity the catalogue lists under that name's folded key."""
    rng = random.Random(seed)
    spellings = [
        "Straße",
        "STRASSE",
        "strasse",
        "Café",
        unicodedata.normalize("NFD", "Café"),
        "CAFÉ",
        "ǅemal",
        "ǆEMAL",
        "ΣΊΣΥΦΟΣ",
        "σίσυφος",
    ]
    sent: list[str] = []
    for n in range(12):
        name = rng.choice(spellings)
        sent.append(name)
        _native(api, project=name, finished_at=f"2024-03-01T10:{n:02d}:00Z")
    listed = _list(api, "projects", {"take": "100"}).body["Items"]
    folded = [i["Name"].casefold() for i in listed]
    assert len(folded) == len(set(folded)), f"two projects whose names differ only in case: {listed}"
    for name in set(sent):
        expected = sum(1 for s in sent if s.casefold() == name.casefold())
        by_name = list_all_filtered(api, {"project": name})
        assert len(by_name) == expected, (name, len(by_name), expected)
        entity = next(i for i in listed if i["Name"].casefold() == name.casefold())
        by_id = list_all_filtered(api, {"project": entity["Id"]})
        assert sorted(d["id"] for d in by_id) == sorted(d["id"] for d in by_name)
        assert {d["project"] for d in by_id} == {entity["Name"]}


def list_all_filtered(api: Api, query: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    q = {**query, "limit": "500"}
    while True:
        r = api.call("GET", NATIVE, path_params=SP, query=q, key=ADMIN_KEY)
        assert r.status == 200, r.body
        items += r.body["items"]
        if not r.body.get("next_cursor"):
            return items
        q = {**query, "limit": "500", "cursor": r.body["next_cursor"]}


def test_a_project_named_like_an_id_stays_a_name(api: Api) -> None:
    """API.md: a filter value shaped as an id of its kind is the id, never an entity whose name looks like
    one. A project registered under the name ``Projects-2`` must not be confused with the entity Projects-2."""
    _native(api, project="Projects-2")  # Projects-1, named "Projects-2"
    _native(api, project="real")  # Projects-2
    listed = {i["Id"]: i["Name"] for i in _list(api, "projects").body["Items"]}
    assert listed == {"Projects-1": "Projects-2", "Projects-2": "real"}
    by = list_all_filtered(api, {"project": "Projects-2"})
    assert [d["project"] for d in by] == ["real"]


# --------------------------------------------------------------------------- every dialect, one entity


def _orlo(api: Api, route: str, body: Any = None, **params: str) -> Any:
    auth = {"authorization": "Basic " + base64.b64encode(f"orlo:{ADMIN_KEY}".encode()).decode()}
    r = api.call("POST", route, path_params=params or None, body=body, headers=auth)
    assert r.status in (200, 204), (route, r.status, r.body)
    return r.body


def _case(rng: random.Random, name: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


@pytest.mark.parametrize("seed", seeds([0, 1, 2]))
def test_every_dialect_lands_on_one_project_and_environment(
    github_hooked: Api, gitlab_hooked: None, clock: Clock, seed: int
) -> None:
    """The same project and environment named through native, Datadog (service/env, env left out = the
    default environment), DX, Orlo (package name; environment = the default), GitHub ``deployment_status``
    (the repository's name) and GitLab's Deployment Hook (the path's last segment), each in a random case:
    one project, one environment in the catalogue, and the native list filtered by their ids counts every
    deployment."""
    api = github_hooked
    rng = random.Random(seed)
    order = ["native", "datadog", "dx", "orlo", "github", "gitlab"]
    rng.shuffle(order)
    expected = 0
    for n, door in enumerate(order):
        clock.advance(timedelta(minutes=10))
        at = clock.now
        iso = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if door == "native":
            _native(api, project=_case(rng, "shop"), environment=_case(rng, "production"), finished_at=iso)
        elif door == "datadog":
            ns = int(at.timestamp()) * 10**9
            attrs: dict[str, Any] = {"service": _case(rng, "shop"), "finished_at": ns, "started_at": ns - 60 * 10**9}
            if rng.random() < 0.5:
                attrs["env"] = _case(rng, "production")
            r = api.call("POST", DD, body={"data": {"attributes": attrs}}, headers={"DD-API-KEY": ADMIN_KEY})
            assert r.status == 200, r.body
        elif door == "dx":
            body = {
                "reference_id": f"dx-{seed}-{n}",
                "service": _case(rng, "shop"),
                "deployed_at": int(at.timestamp()),
                "commit_sha": sha(n),
                "repository": "acme/shop",
            }
            if rng.random() < 0.5:
                body["environment"] = _case(rng, "production")
            r = api.call("POST", DX_CREATE, body=body, key=ADMIN_KEY)
            assert r.status in (200, 201) and r.body["ok"], r.body
        elif door == "orlo":
            rid = _orlo(api, "/orlo/releases", {"user": "alice", "platforms": ["site1"]})["id"]
            pid = _orlo(
                api, "/orlo/releases/{rid}/packages", {"name": _case(rng, "shop"), "version": f"1.{n}"}, rid=rid
            )["id"]
            _orlo(api, "/orlo/releases/{rid}/packages/{pid}/start", rid=rid, pid=pid)
            clock.advance(timedelta(minutes=1))
            _orlo(api, "/orlo/releases/{rid}/packages/{pid}/stop", {"success": True}, rid=rid, pid=pid)
        elif door == "github":
            event = gh_status(
                100 + n,
                "success",
                iso,
                commit=sha(n),
                created=iso,
                environment=_case(rng, "production"),
                repo=f"acme/{_case(rng, 'shop')}",
            )
            r = gh(api, "deployment_status", event, f"gh-{seed}-{n}")
            assert r.status < 300, r.body
        elif door == "gitlab":
            payload = gl_deployment(
                200 + n,
                "success",
                at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                commit=sha(n),
                environment=_case(rng, "production"),
            )
            payload["project"]["path_with_namespace"] = f"acme/{_case(rng, 'shop')}"
            r = gl(api, payload, f"gl-{seed}-{n}")
            assert r.status < 300, r.body
        expected += 1
    projects = _list(api, "projects").body["Items"]
    environments = _list(api, "environments").body["Items"]
    assert [p["Name"].casefold() for p in projects] == ["shop"], (order, projects)
    assert [e["Name"].casefold() for e in environments] == ["production"], (order, environments)
    got = list_all_filtered(api, {"project": projects[0]["Id"], "environment": environments[0]["Id"]})
    assert len(got) == expected, (order, [d.get("source") for d in got])
    sources = {d.get("source") for d in list_all(api)}
    assert len(sources) >= 5, sources


# --------------------------------------------------------------------------- more refusals; tenant tags


def test_oversized_metadata_refusal_registers_no_catalogue_entity(api: Api) -> None:
    """Metadata past its 16 KiB is refused at validation (400): the names it brought stay out of the catalogue
    (the item limits keep every valid deployment under DynamoDB's 400 KB, so no post-resolve 413 is reachable)."""
    body = {
        "project": "ghost-big",
        "environment": "ghost-big-env",
        "finished_at": "2024-03-01T11:00:00Z",
        "metadata": {f"k{n}": "x" * 1000 for n in range(450)},
    }
    r = api.call("POST", NATIVE, path_params=SP, body=body, key=ADMIN_KEY)
    assert r.status in (400, 413), (r.status, str(r.body)[:300])
    assert _ghosts(api) == {}, f"a refused ({r.status}) create registered catalogue entities"


def test_report_tenant_tags_taken_from_the_catalogue_select_the_deployments_carrying_them(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """A tag set is one entity whatever the case of its name (METRICS §1, first spelling wins), and the
    catalogue answers each tag as ``CanonicalTagName`` 'what reports' TenantTags list' (native_admin.py). A
    report naming a canonical tag read from ``/tenanttagsets`` must select every tenanted deployment the
    catalogue lists under that tag, whatever case its set name was sent in."""
    from tests.support.recompute import scheduled_run

    sent = {"acme": "Location/Europe", "globex": "location/Europe", "initech": "LOCATION/Europe"}
    for n, (tenant, tag) in enumerate(sent.items()):
        _native(api, tenant=tenant, tenant_tags=[tag], finished_at=f"2024-02-28T1{n}:00:00Z")
    sets = _list(api, "tenanttagsets").body["Items"]
    canonical = [t["CanonicalTagName"] for s in sets for t in s["Tags"]]
    assert canonical == ["Location/Europe"], sets
    made = api.call(
        "POST",
        "/api/{spaceId}/insights/reports",
        path_params=SP,
        body={"Name": "europe", "TenantMode": "Tenanted", "TenantTags": canonical, "TimeZone": "UTC"},
        key=ADMIN_KEY,
    )
    assert made.status == 201, made.body
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    streams = api.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/deployments",
        path_params={**SP, "reportId": made.body["Id"]},
        key=ADMIN_KEY,
    )
    assert streams.status == 200, streams.body
    tenants = sorted(s["TenantName"] for s in streams.body["Streams"] if s["Deployments"])
    assert tenants == ["acme", "globex", "initech"], tenants
    # Split by the set: one series, "Europe", counting all three (the set sent in any case).
    set_id = sets[0]["Id"]
    clock.now = clock.now.replace(year=2024, month=3, day=2)
    split = api.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={**SP, "reportId": made.body["Id"]},
        query={"split": "TenantTagSet", "tenantTagSetId": set_id, "timeRange": "LastMonth", "granularity": "Monthly"},
        key=ADMIN_KEY,
    )
    assert split.status == 200, split.body
    counts = {
        series["Name"]: sum(i["NumberOfSuccessfulDeployments"] for i in series["Intervals"])
        for series in split.body["Series"]
    }
    assert counts == {"Europe": 3}, counts


@pytest.mark.parametrize(
    "value",
    [
        "x" * 5000,
        "é" * 3000,
        "Projects-" + "9" * 40,
        "Projects-٣",
        "Environments-1",
        "\U0001f4a5" * 500,
        " ",
        "Projects--1",
    ],
)
def test_hostile_catalogue_filter_values_select_nothing_and_never_5xx(api: Api, value: str) -> None:
    """List filters naming a catalogue entity by name or id (API.md): a value that names nothing selects
    nothing; none is a 5xx."""
    _native(api)
    listed = api.call("GET", NATIVE, path_params=SP, query={"project": value}, key=ADMIN_KEY)
    assert listed.status in (200, 400), (listed.status, str(listed.body)[:300])
    if listed.status == 200:
        assert listed.body["items"] == []
    summary = api.call(
        "GET", "/api/{spaceId}/summary", path_params=SP, query={"project": value, "environment": value}, key=ADMIN_KEY
    )
    assert summary.status in (200, 400), (summary.status, str(summary.body)[:300])
    metrics = api.call(
        "GET",
        "/api/{spaceId}/dora/metrics",
        path_params=SP,
        query={
            "metric": "deployment_frequency",
            "start_date": "2024-02-01",
            "end_date": "2024-03-01",
            "interval": "all",
            "project": value,
        },
        key=ADMIN_KEY,
    )
    assert metrics.status in (200, 400), (metrics.status, str(metrics.body)[:300])
    if metrics.status == 200:
        assert all(not row["value"] for row in metrics.body), metrics.body


def test_acknowledged_code_host_statuses_register_no_catalogue_entity(github_hooked: Api, gitlab_hooked: None) -> None:
    """GitHub ``deployment_status`` other than success/failure/error and GitLab Deployment Hooks other than
    success/failed are acknowledged (202) and make no deployment (API.md): nothing of them in the catalogue."""
    api = github_hooked
    for n, state in enumerate(("pending", "in_progress", "queued", "inactive")):
        event = gh_status(
            300 + n,
            state,
            "2024-03-01T11:00:00Z",
            commit=sha(n),
            created="2024-03-01T10:59:00Z",
            environment="ghost-gh-env",
            repo="acme/ghost-gh",
        )
        r = gh(api, "deployment_status", event, f"ghost-gh-{n}")
        assert r.status < 300, r.body
    for n, status in enumerate(("running", "canceled", "created", "blocked")):
        payload = gl_deployment(400 + n, status, "2024-03-01 11:00:00 UTC", commit=sha(n), environment="ghost-gl-env")
        payload["project"]["path_with_namespace"] = "acme/ghost-gl"
        r = gl(api, payload, f"ghost-gl-{n}")
        assert r.status < 300, r.body
    assert list_all(api) == []
    assert _ghosts(api) == {}


def test_datadog_failure_id_conflict_registers_no_catalogue_entity(api: Api) -> None:
    ns = 1709290000 * 10**9
    body = {
        "data": {
            "attributes": {"services": ["shop"], "env": "production", "started_at": ns, "id": "dd-failure-conflict-01"}
        }
    }
    assert api.call("POST", DD_FAILURE, body=body, headers={"DD-API-KEY": ADMIN_KEY}).status == 200
    body["data"]["attributes"].update({"services": ["ghost-dd-svc"], "env": "ghost-dd-env", "team": "ghost-dd-team"})
    again = api.call("POST", DD_FAILURE, body=body, headers={"DD-API-KEY": ADMIN_KEY})
    assert again.status == 409, (again.status, again.body)
    assert _ghosts(api) == {}


def test_an_empty_space_lists_nothing_in_octopus_shape(api: Api) -> None:
    for segment in LISTS:
        r = _list(api, segment)
        assert r.status == 200, r.body
        assert (r.body["Items"], r.body["TotalResults"]) == ([], 0)


@pytest.mark.parametrize("seed", seeds([0, 1]))
def test_concurrent_first_sightings_in_other_cases_make_one_entity_each(api: Api, seed: int) -> None:
    """Deployments sent at the same moment naming the same new projects and environments in other cases
    (native, batch, DX): one entity per case-folded name, every deployment on the entity of its name."""
    from concurrent.futures import ThreadPoolExecutor

    from dora_insights.logic import catalogue

    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "straße"]
    jobs: list[tuple[str, Any]] = []
    for n in range(12):
        door = rng.choice(["native", "batch", "dx"])
        picks = [(_case(rng, rng.choice(words)), _case(rng, rng.choice(["prod", "stage"]))) for _ in range(3)]
        jobs.append((door, (n, picks)))

    def send(job: tuple[str, Any]) -> list[int]:
        door, (n, picks) = job
        at = f"2024-03-01T10:{n:02d}:00Z"
        if door == "native":
            p, e = picks[0]
            r = api.call(
                "POST", NATIVE, path_params=SP, body={"project": p, "environment": e, "finished_at": at}, key=ADMIN_KEY
            )
            return [r.status]
        if door == "batch":
            items = [{"project": p, "environment": e, "finished_at": at} for p, e in picks]
            r = api.call("POST", BATCH, path_params=SP, body={"deployments": items}, key=ADMIN_KEY)
            return [x["status"] for x in r.body["results"]] if r.status == 200 else [r.status]
        p, e = picks[0]
        body = {
            "reference_id": f"c-{seed}-{n}",
            "service": p,
            "environment": e,
            "deployed_at": 1709287200 + n,
            "commit_sha": sha(n),
            "repository": "acme/x",
        }
        r = api.call("POST", DX_CREATE, body=body, key=ADMIN_KEY)
        return [r.status]

    catalogue.clear_cache()
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = [s for answer in pool.map(send, jobs) for s in answer]
    assert all(s in (200, 201) for s in statuses), statuses
    for segment in ("projects", "environments"):
        items = _list(api, segment, {"take": "100"}).body["Items"]
        folded = [i["Name"].casefold() for i in items]
        assert len(folded) == len(set(folded)), (segment, items)
    projects = {i["Id"]: i["Name"] for i in _list(api, "projects", {"take": "100"}).body["Items"]}
    for d in list_all(api):
        assert projects[d["project_id"]] == d["project"]


@pytest.mark.parametrize("segment", LISTS)
def test_partial_name_and_ids_filter_every_list_before_paging(api: Api, segment: str) -> None:
    """Octopus' ``partialName`` (a part of the name, any case) and ``ids`` (comma-separated, or the parameter
    repeated: API Gateway's payload 2.0 joins repeated values with commas) on each catalogue list: the
    counts and pages are those of the filtered list, and the page links carry the filters."""
    field = {
        "projects": "project",
        "environments": "environment",
        "tenants": "tenant",
        "projectgroups": "team",
        "channels": "channel",
        "tenanttagsets": "tenant_tags",
    }[segment]
    names = ["Shop", "api", "workshop", "web"]
    for n, name in enumerate(names):
        value: Any = [f"{name}/x"] if field == "tenant_tags" else name
        extra = {"tenant": "acme"} if field == "tenant_tags" else {}
        _native(api, **{field: value, **extra}, finished_at=f"2024-03-01T10:{n:02d}:00Z")
    everything = {i["Name"]: i["Id"] for i in _list(api, segment, {"take": "100"}).body["Items"]}
    assert set(names) <= set(everything)
    shop = _list(api, segment, {"partialName": "SHO"}).body
    assert [i["Name"] for i in shop["Items"]] == ["Shop", "workshop"]
    assert (shop["TotalResults"], shop["NumberOfPages"], shop["LastPageNumber"]) == (2, 1, 0)
    base = f"/api/Spaces-1/{segment}"
    assert shop["Links"]["Self"] == f"{base}?skip=0&take=30&partialName=SHO", shop["Links"]
    assert shop["Links"]["Template"] == base + "{?skip,take,ids,partialName}"
    second = _list(api, segment, {"partialName": "sho", "skip": "1", "take": "1"}).body
    assert [i["Name"] for i in second["Items"]] == ["workshop"] and second["TotalResults"] == 2
    assert second["Links"]["Page.Previous"] == f"{base}?skip=0&take=1&partialName=sho"
    assert "Page.Next" not in second["Links"]
    one = _list(api, segment, {"ids": everything["api"]}).body
    assert [i["Name"] for i in one["Items"]] == ["api"] and one["TotalResults"] == 1
    two = _list(api, segment, {"ids": f" {everything['web']},{everything['Shop']},,Projects-999"}).body
    assert [i["Name"] for i in two["Items"]] == ["Shop", "web"]
    both = _list(api, segment, {"ids": f"{everything['web']},{everything['Shop']}", "partialName": "SH"}).body
    assert [i["Name"] for i in both["Items"]] == ["Shop"]
    assert [i["Name"] for i in _list(api, segment, {"partialName": "", "ids": ""}).body["Items"]] == list(everything)


def test_other_parameters_are_ignored_as_octopus_ignores_them(api: Api) -> None:
    """Octopus' project list has no ``name`` filter (nor do the others here): like any parameter it does
    not take, it changes nothing."""
    for name in ("shop", "api", "web"):
        _native(api, project=name)
    for query in ({"name": "api"}, {"partialname": "api"}, {"IDS": "Projects-2"}):
        r = _list(api, "projects", query)
        assert r.status == 200
        assert [i["Name"] for i in r.body["Items"]] == ["shop", "api", "web"], query


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"skip": "0", "take": "1", "partialName": "é" * 5000}, []),
        ({"partialName": "💥" * 300, "ids": "Projects-1," * 400}, []),
        ({"ids": "Projects-1," * 400}, ["p0"]),
        ({"partialName": "\x00%;'\"<>"}, []),
        ({"ids": "Projects-" + "9" * 400}, []),
        ({"ids": "Projects-٣,Projects-１, ,,"}, []),
        ({"ids": "," * 3000}, ["p0", "p1", "p2"]),  # no id named: no filter
    ],
)
def test_hostile_filter_values_filter_and_never_5xx(api: Api, query: dict[str, str], expected: list[str]) -> None:
    for n in range(3):
        _native(api, project=f"p{n}")
    r = _list(api, "projects", query)
    assert r.status == 200, (r.status, str(r.body)[:300])
    assert [i["Name"] for i in r.body["Items"]] == expected
    assert r.body["TotalResults"] == len(expected)
    assert r.body["NumberOfPages"] >= 1 and r.body["LastPageNumber"] == r.body["NumberOfPages"] - 1


@pytest.mark.parametrize("seed", seeds([0, 1]))
def test_reports_by_catalogue_ids_count_every_dialects_deployments(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """Deployments of two projects and two environments, each sent through native, Datadog or DX with the
    names in a random case: a report naming one project's id and one environment's id (read from the
    catalogue) lists exactly the deployments of that pair."""
    from tests.support.recompute import scheduled_run

    rng = random.Random(seed)
    model: dict[tuple[str, str], int] = {}
    for n in range(18):
        project, env = rng.choice(["shop", "api"]), rng.choice(["production", "staging"])
        model[(project, env)] = model.get((project, env), 0) + 1
        at = 1709200000 + n * 600  # 2024-02-29
        door = rng.choice(["native", "datadog", "dx"])
        if door == "native":
            _native(api, project=_case(rng, project), environment=_case(rng, env), finished_at=at)
        elif door == "datadog":
            attrs = {
                "service": _case(rng, project),
                "env": _case(rng, env),
                "finished_at": at * 10**9,
                "started_at": (at - 60) * 10**9,
            }
            assert (
                api.call("POST", DD, body={"data": {"attributes": attrs}}, headers={"DD-API-KEY": ADMIN_KEY}).status
                == 200
            )
        else:
            body = {
                "reference_id": f"r-{seed}-{n}",
                "service": _case(rng, project),
                "environment": _case(rng, env),
                "deployed_at": at,
                "commit_sha": sha(n),
                "repository": "acme/x",
            }
            assert api.call("POST", DX_CREATE, body=body, key=ADMIN_KEY).body["ok"]
    projects = {i["Name"].casefold(): i["Id"] for i in _list(api, "projects").body["Items"]}
    envs = {i["Name"].casefold(): i["Id"] for i in _list(api, "environments").body["Items"]}
    assert sorted(projects) == sorted({p for p, _ in model}) and sorted(envs) == sorted({e for _, e in model})
    reports = {}
    for project, env in model:
        made = api.call(
            "POST",
            "/api/{spaceId}/insights/reports",
            path_params=SP,
            body={
                "Name": f"{project}-{env}",
                "ProjectIds": [projects[project]],
                "EnvironmentGroups": [{"Name": env, "Environments": [envs[env]]}],
                "TimeZone": "UTC",
            },
            key=ADMIN_KEY,
        )
        assert made.status == 201, made.body
        reports[(project, env)] = made.body["Id"]
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    for pair, report_id in reports.items():
        streams = api.call(
            "GET",
            "/api/{spaceId}/insights/reports/{reportId}/deployments",
            path_params={**SP, "reportId": report_id},
            key=ADMIN_KEY,
        )
        assert streams.status == 200, streams.body
        counted = sum(len(s["Deployments"]) for s in streams.body["Streams"])
        assert counted == model[pair], (pair, counted, model[pair])
        assert {(s["ProjectId"], s["EnvironmentId"]) for s in streams.body["Streams"]} == {
            (projects[pair[0]], envs[pair[1]])
        }


def test_a_503_write_contended_stores_no_deployment_and_its_retry_lands_on_one_entity_each(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API.md Errors: a 503 ``write_contended`` stores no deployment. The names it brought may be registered
    (they are registered before the write, which needs their ids: the retry uses them); its tenant tags are
    recorded only once it is stored. The retry stores it once, on one entity per name."""
    from tests.support.contention import Contention, record_pauses

    record_pauses(monkeypatch)
    contention = Contention(monkeypatch)
    contention.left = None  # every transaction updating a stream's dirty mark is cancelled
    body = {k: v for k, v in GHOST.items() if k != "channel"}
    r = _native(api, expect=None, id="contended-0001", **body)
    assert r.status == 503, (r.status, r.body)
    assert contention.cancelled > 0
    contention.left = 0
    assert list_all(api) == []
    assert "tenanttags" not in _ghosts(api), "a tag of a deployment never stored was recorded"
    again = _native(api, id="contended-0001", **body)
    assert again.body["id"] == "contended-0001"
    assert [d["id"] for d in list_all(api)] == ["contended-0001"]
    ghosts = _ghosts(api)
    assert all(len(names) == 1 for names in ghosts.values()), ghosts
    assert ghosts["tenanttags"] == ["GhostSet/ghost-tag"]


def test_a_batch_registers_the_names_of_its_accepted_items_only(api: Api) -> None:
    """Only the items the write refuses keep their new names out: a name a refused item shares with an
    accepted one is registered; an item repeating an earlier one of the batch (the same id and values) is
    answered as a repeat, one with the same id and other values is refused."""
    _native(api, id="stored-0001")
    deployments = [
        {"id": "stored-0001", "project": "ghost-refused", "environment": "shared-env", "tenant": "ghost-t1"},
        {"id": "fresh-0001", "project": "fresh", "environment": "shared-env", "tenant_tags": ["Set/one"]},
        {"id": "fresh-0001", "project": "fresh", "environment": "shared-env", "tenant_tags": ["Set/one"]},
        {"id": "fresh-0001", "project": "ghost-again", "environment": "ghost-e", "tenant_tags": ["GhostSet/x"]},
        {"id": "stored-0001", "project": "shop", "environment": "production"},
        {"project": "plain", "environment": "shared-env"},
    ]
    body = {"deployments": [{"finished_at": "2024-03-01T11:00:00Z", **d} for d in deployments]}
    r = api.call("POST", BATCH, path_params=SP, body=body, key=ADMIN_KEY)
    assert r.status == 200, r.body
    assert [x["status"] for x in r.body["results"]] == [409, 201, 200, 409, 200, 201], r.body
    assert _ghosts(api) == {}
    names = _all_names(api)
    assert names["projects"] == ["shop", "fresh", "plain"]
    assert names["environments"] == ["production", "shared-env"]
    assert names["tenanttags"] == ["Set/one"]


def test_creates_whose_names_are_known_read_nothing_before_the_write(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check of an id before a name is registered costs nothing when no name is new: a native create
    or a batch naming known entities reads no id; a batch bringing new names reads its ids once."""
    from dora_insights.dal.store import Store

    calls: list[int] = []
    real = Store.stored_body_hashes

    def counted(self: Store, space_id: str, **kwargs: Any) -> Any:
        calls.append(len(list(kwargs.get("deployment_ids", ()))) + len(list(kwargs.get("idempotency_keys", ()))))
        return real(self, space_id, **kwargs)

    monkeypatch.setattr(Store, "stored_body_hashes", counted)
    _native(api, id="first-0001")
    assert calls == [1]
    _native(api, id="second-0001")
    _native(api, expect=200, id="second-0001")  # a repeat
    items = [
        {"id": f"b-{n}", "project": "shop", "environment": "production", "finished_at": "2024-03-01T11:00:00Z"}
        for n in range(5)
    ]
    assert api.call("POST", BATCH, path_params=SP, body={"deployments": items}, key=ADMIN_KEY).status == 200
    assert calls == [1]
    items += [
        {"id": f"n-{n}", "project": f"new-{n}", "environment": "production", "finished_at": "2024-03-01T11:00:00Z"}
        for n in range(150)
    ]
    r = api.call("POST", BATCH, path_params=SP, body={"deployments": items}, key=ADMIN_KEY)
    assert r.status == 200 and {x["status"] for x in r.body["results"]} == {200, 201}
    assert calls == [1, 150]
    same = [
        {"id": f"s-{n}", "project": "one-new", "environment": "production", "finished_at": "2024-03-01T11:00:00Z"}
        for n in range(300)
    ]
    r = api.call("POST", BATCH, path_params=SP, body={"deployments": same}, key=ADMIN_KEY)
    assert r.status == 200 and {x["status"] for x in r.body["results"]} == {201}
    assert calls == [1, 150, 1], "one item bringing the new name is checked, not each"


def test_dx_upsert_of_a_known_reference_id_with_new_names_replaces_it(api: Api) -> None:
    """``deployments.upsert`` is no create refused: other values under a known reference_id replace the
    deployment, and the names the replacement brings are registered."""
    body = {
        "reference_id": "dx-up-0001",
        "service": "shop",
        "deployed_at": 1709290000,
        "commit_sha": sha(1),
        "repository": "acme/shop",
    }
    assert api.call("POST", DX_UPSERT, body=body, key=ADMIN_KEY).body["ok"]
    again = api.call("POST", DX_UPSERT, body={**body, "service": "moved", "environment": "staging"}, key=ADMIN_KEY)
    assert again.body["ok"], again.body
    assert [(d["project"], d["environment"]) for d in list_all(api)] == [("moved", "staging")]
    assert _names(api, "projects") == ["shop", "moved"]
