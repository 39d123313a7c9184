"""Every key format, attribute name, index name and entity prefix of the single table.

No other module formats a key string. Every partition key begins with ``S#<spaceId>#``
except the deployment-wide items marked *system* below, which hold no space data: the space
registry (so the scheduled recompute can find spaces), the space-id counter, the recompute's
rotation cursor, API-key lookups by hash and share links (which resolve to a space first).

Table: ``PK``/``SK`` strings; overloaded GSIs ``GSI1``..``GSI3`` (``GSI<n>PK``/``GSI<n>SK``,
projection ALL); TTL attribute ``expires_at`` (epoch seconds). Every item carries ``type``.

Access patterns
===============

| # | Pattern                                   | Operation            | Index | Key condition                                             | Example |
|---|-------------------------------------------|----------------------|-------|-----------------------------------------------------------|---------|
| 1 | Resolve an API key by its hash (system)   | GetItem (consistent) | table | PK=``KEY#<sha256>`` SK=``KEY``                            | ``KEY#9f86d0…`` |
| 2 | Allocate the next space number (system)   | UpdateItem ADD       | table | PK=``SYS#COUNTER`` SK=``Spaces``                          | |
| 3 | List spaces (system, recompute)           | Query                | table | PK=``SYS#SPACES``                                         | SK=``Spaces-1`` |
| 4 | Get a space and its settings              | GetItem / UpdateItem (cond. on ``settings_revision``; in a TransactWrite with pattern 14 marks when the failure window changes) | table | PK=``S#<sp>#SPACE`` SK=``SPACE``                          | consistent when a secret is checked (webhook signature) or the settings are read to change |
| 5 | Allocate catalogue/key numbers of a space | UpdateItem ADD       | table | PK=``S#<sp>#SPACE`` SK=``COUNTER``                        | attrs ``Projects``, ``ApiKeys`` |
| 6 | List a space's API keys                   | Query                | table | PK=``S#<sp>#APIKEY``                                      | SK=``ApiKeys-3`` |
| 7 | Find catalogue entity by name             | BatchGetItem         | table | PK=``S#<sp>#CAT#<Kind>`` SK=``N#<casefolded name>``       | ``S#Spaces-1#CAT#Projects`` / ``N#shop`` |
| 8 | Find catalogue entity by id / list by id  | GetItem / Query      | table | PK=``S#<sp>#CAT#<Kind>`` SK=``I#<zero-padded number>``    | ``I#0000000012`` |
| 8b| Tags of the tenant tag sets (list)        | Query / BatchWrite   | table | PK=``S#<sp>#CAT#TagSets`` SK=``T#<zero-padded set number>#<tag>`` | one small item a tag, so a set of any size stays within the item limit (older sets also keep a ``tags`` string set on their pattern 8 item, read as well) |
| 9 | Get a deployment by id                    | GetItem              | table | PK=``S#<sp>#DEP#<id>`` SK=``DEP``                         | |
| 10| List a space's deployments by finish time | Query (desc)         | GSI1  | GSI1PK=``S#<sp>#DEPS`` GSI1SK between ``<from>``/``<to>`` | GSI1SK=``<finished>#<id>`` |
| 11| List a project's deployments by time      | Query (desc)         | GSI2  | GSI2PK=``S#<sp>#DEPS#P#<projectId>``                      | |
| 12| A stream's deployments in stream order    | Query (asc)          | GSI3  | GSI3PK=``S#<sp>#STREAM#<streamKey>``                      | GSI3SK=``<finished>#<started>#<id>`` |
| 13| Idempotency record of a dialect's id      | in TransactWrite     | table | PK=``S#<sp>#IDEM#<dialect>#<id>`` SK=``IDEM``             | ``IDEM#datadog#4242fcdd31586083`` |
| 14| Dirty streams of a space (recompute)      | Query                | table | PK=``S#<sp>#DIRTY``                                       | SK=``<streamKey>`` |
| 15| Failure events of a space by start time   | Query (desc)         | GSI1  | GSI1PK=``S#<sp>#FAILS``                                   | GSI1SK=``<started>#<id>`` |
| 16| Get a failure event by id                 | GetItem              | table | PK=``S#<sp>#FAIL#<id>`` SK=``FAIL``                       | |
| 17| Streams of a project (a failure marks them dirty) | Query (begins_with) | table | PK=``S#<sp>#STREAMS`` SK begins_with ``<projectId>/`` | pattern 44 items |
| 18| Recompute health of a space's streams   | Query (begins_with) / UpdateItem ADD (atomic count, cond. quarantine) / DeleteItem | table | PK=``S#<sp>#HEALTH`` SK=``STREAM#<streamKey>`` | failing or quarantined streams only; gone once the stream recomputes |
| 19| Recompute health of a space (last runs)   | Query (same partition as 18) / UpdateItem | table | PK=``S#<sp>#HEALTH`` SK=``SPACE``                         | last clean visit, last failure |
| 20| Recompute rotation cursor (system)        | GetItem / PutItem    | table | PK=``SYS#RECOMPUTE`` SK=``CURSOR``                        | attr ``after``: the next run starts with the space after it |
| 40| Get a report / list reports by number     | GetItem / Query      | table | PK=``S#<sp>#REPORTS`` SK=``<zero-padded number>``         | ``0000000001`` = InsightsReports-1 |
| 41| Per-deployment figures of every stream    | Query (or begins_with a stream's generation) / BatchWrite | table | PK=``S#<sp>#FIGURES`` SK=``<streamKey>#<gen>#<YYYY-MM>#<n>`` | chunks of one generation, each spanning consecutive months from its first (`<YYYY-MM>`) |
| 44| Streams of a space (current generation)   | Query / PutItem      | table | PK=``S#<sp>#STREAMS`` SK=``<streamKey>``                  | names of its entities, figures generation |
| 42| Recompute state of a report               | GetItem / PutItem    | table | PK=``S#<sp>#REPORTS`` SK=``<zero-padded number>#STATE``   | current generation, computed-from version |
| 43| A report's aggregates of one generation   | Query (begins_with)  | table | PK=``S#<sp>#AGG#<number>#<generation>`` SK=``<split>#<granularity>#<part>#<n>`` (part ``D`` numbers, ``R`` rendered text) | TTL once superseded |
| 50| Get an insight / list a space's insights  | Get / BatchGet / Query | table | PK=``S#<sp>#INSIGHTS`` SK=``<zero-padded id>``            | ``0000000007`` |
| 51| Views of a day (once per viewer+insight)  | PutItem (cond.)      | table | PK=``S#<sp>#VIEWS#<YYYY-MM-DD>`` SK=``<id>#<viewer>``     | TTL 40 days |
| 52| View counts of a day (trending)           | UpdateItem / Query   | table | PK=``S#<sp>#VIEWCOUNTS#<YYYY-MM-DD>`` SK=``<zero-padded id>`` | TTL 40 days; the latest viewers in two lists of at most 3 |
| 53| A viewer's last views (my_last_viewed)    | PutItem / Query      | table | PK=``S#<sp>#LASTVIEWED#<viewer>`` SK=``<zero-padded id>`` | |
| 54| Activity of a space, newest first         | Query (desc)         | table | PK=``S#<sp>#ACTIVITY`` SK=``<time>#<id>#<random>``        | |
| 55| Activity of one insight, newest first     | Query (desc)         | GSI1  | GSI1PK=``S#<sp>#ACTIVITY#<id>`` GSI1SK=``<time>#<random>`` | |
| 56| Sharing configuration of an insight       | GetItem / Put (cond. on ``version``) | table | PK=``S#<sp>#INSIGHTS`` SK=``<zero-padded id>#SHARING`` | passwords (≤ 10) embedded: scrypt hash, salt, parameters |
| 57| Resolve a share token (system)            | GetItem              | table | PK=``SHARE#<sha256 of token>`` SK=``SHARE``               | public links carry no space |
| 58| Share login session (system)              | GetItem              | table | PK=``SHARESESSION#<sha256>`` SK=``SESSION``               | TTL 24 h; attrs ``password_id``, ``link_hash`` checked against pattern 56 on use |
| 59| Share login attempts of a link           | GetItem + UpdateItem (cond. on ``version``) | table | PK=``S#<sp>#SHARELOGIN#<id>`` SK=``LOG`` | map ``log`` of ``<instant>#<rand>`` -> epoch second it stops counting (at most 10 live), counted before the KDF; a success removes its entry; TTL |
| 60| Thresholds of a space (recompute)         | Query (with 61) / Put (create) / Update of settings (cond. on ``version``) / Update of the check (cond. on ``last_checked_at``) | table | PK=``S#<sp>#THRESHOLDS`` SK=``<zero-padded id>#<tid>`` | a check and its pattern 61 item in one TransactWrite |
| 61| Alert events not yet delivered (outbox)   | Query (same partition as 60) / DeleteItem (cond.) | table | PK=``S#<sp>#THRESHOLDS`` SK=``OUTBOX#<notification id>`` | retried every run until PutEvents accepts it; id ``<tid>:<checked_at>`` |
| 62| Alert destinations of a space / one      | Query / GetItem / Put (cond.) / Update (cond.) / Delete | table | PK=``S#<sp>#ALERTDEST`` SK=``<destination id>`` | webhook secret or Slack URL kept to sign/send; at most 10 a space |
| 63| Delivery log of a destination, newest first | Put (in a TransactWrite with 64, and 66, on success) / Query (desc, begins_with) | table | PK=``S#<sp>#ALERTDEST#<id>`` SK=``L#<attempted_at>#<delivery id>`` | TTL 30 days |
| 64| An event delivered to a destination       | GetItem or TransactGetItems (with 66) / Put (with 63) | table | PK=``S#<sp>#ALERTDEST#<id>`` SK=``D#<notification id>`` | a retried event skips destinations it reached (a superseded one too); TTL 30 days |
| 66| Latest transition of a threshold a destination took | TransactGetItems (with 64) / Put (cond. ``checked_at <=`` the new one; with 63 and 64) | table | PK=``S#<sp>#ALERTDEST#<id>`` SK=``T#<threshold id>`` | attr ``checked_at``: an older transition is not sent there (superseded); TTL 30 days from the last write |
| 65| Number of a space's alert destinations    | Update ADD (cond. ``destinations < 10``) in the create's TransactWrite, ADD -1 in the delete's | table | PK=``S#<sp>#ALERTDESTS`` SK=``COUNT`` | the cap; absent until the first create or delete counts pattern 62 (consistent) and puts it |
| 70| A space's repositories (default branch)  | GetItem / Query      | table/GSI1 | PK=``S#<sp>#REPO#<repo>`` SK=``REPO``; GSI1PK=``S#<sp>#REPOS`` GSI1SK=``<repo>`` | ``S#Spaces-1#REPO#acme/shop`` |
| 71| Next push position of a branch            | UpdateItem ADD       | table | PK=``S#<sp>#REPO#<repo>`` SK=``BRANCH#<branch>``          | attr ``next_position`` |
| 72| Commit by sha or 7+ char prefix           | Query (begins_with)  | table | PK=``S#<sp>#REPO#<repo>#C`` SK begins_with ``<sha prefix>`` | SK=``<full sha>#<branch>`` |
| 73| Commits of a branch in push order         | Query (range, desc)  | GSI1  | GSI1PK=``S#<sp>#REPO#<repo>#B#<branch>`` GSI1SK between positions | GSI1SK=``000000000042`` |
| 74| Commits of a pull request                 | Query                | GSI2  | GSI2PK=``S#<sp>#REPO#<repo>#PRC#<number>``                | GSI2SK=``<sha>`` |
| 75| Pull request by repository + number       | GetItem / BatchGet   | table | PK=``S#<sp>#REPO#<repo>#PR`` SK=``<zero-padded number>``  | ``0000000042`` |
| 76| Pull requests by merge commit sha         | Query                | GSI1  | GSI1PK=``S#<sp>#PRSHA#<sha[:7]>`` (any repository)        | GSI1SK=``<repo>#<number>`` |
| 77| Pull requests by head sha                 | Query                | GSI2  | GSI2PK=``S#<sp>#PRSHA#<sha[:7]>``                         | GSI2SK=``<repo>#<number>`` |
| 78| Pull requests of repo+base by merge time  | Query (range, asc)   | GSI3  | GSI3PK=``S#<sp>#REPO#<repo>#MERGED#<base>`` GSI3SK between | GSI3SK=``<merged_at>#<number>`` |
| 79| Pull request by GitHub id (or placeholder)| GetItem (in TransactWrite) | table | PK=``S#<sp>#GHPR#<github id>`` SK=``GHPR``         | services assigned before the PR is known |
| 80| GitHub / GitLab webhook delivery seen     | GetItem / PutItem    | table | PK=``S#<sp>#GHDELIVERY#<guid>`` SK=``DELIVERY``           | TTL 30 days; GitLab's: ``gitlab:<uuid>`` |
| 90| Get an Orlo release (packages embedded)  | GetItem / Put (cond. on ``version``) | table | PK=``S#<sp>#ORLO#R#<rid>`` SK=``RELEASE`` | in a TransactWrite with pattern 94 items |
| 91| Orlo releases of a space by stime         | Query (range)        | GSI1  | GSI1PK=``S#<sp>#ORLO#RELEASES`` GSI1SK between times      | GSI1SK=``<stime>#<rid>`` (``~#<rid>`` without stime) |
| 92| Orlo releases of a user by stime          | Query (range)        | GSI2  | GSI2PK=``S#<sp>#ORLO#USER#<user>``                        | GSI2SK=``<stime>#<rid>`` |
| 93| Orlo releases of a team by stime          | Query (range)        | GSI3  | GSI3PK=``S#<sp>#ORLO#TEAM#<team>`` (sparse: teamless none) | GSI3SK=``<stime>#<rid>`` |
| 94| Orlo package id -> its release id         | GetItem / in TransactWrite | table | PK=``S#<sp>#ORLO#P#<pid>`` SK=``PACKAGE``            | attrs ``release_id``, ``claims`` (import calls holding it) |
| 95| Results posted for an Orlo package        | PutItem              | table | PK=``S#<sp>#ORLO#P#<pid>`` SK=``RESULT#<time>#<id>``      | content as text |
| 96| Orlo token (X-Auth-Token) by its hash     | GetItem (consistent) | table | PK=``S#<sp>#ORLOTOKEN#<sha256>`` SK=``TOKEN``             | token = ``<sp>.<secret>``; expiry checked in code, TTL |
| 100| Changes a stream has shipped (ledger)     | BatchGetItem / in the attribution's TransactWrite (BatchWrite past 100 items) | table | PK=``S#<sp>#LEDGER#<streamKey>`` SK=``C#<change id>`` | ``C#pr:acme/shop:42``; attr ``deployment_id`` (a re-run of that deployment ignores its own entries) |
| 101| A stream's mark on a branch (ledger)      | GetItem / Update in the attribution's TransactWrite (cond. on the position read) | table | PK=``S#<sp>#LEDGER#<streamKey>`` SK=``M#<repo>#<branch>`` | attrs ``position``, ``deployment_id``, ``previous_position`` (an upsert reverts its own mark); ``M#~<sha256>`` when over 1024 bytes |
| 102| Deployments awaiting a sha (pending)      | Query / Put, Delete in the attribution's TransactWrite | table | PK=``S#<sp>#AWAIT#<sha[:7]>`` SK=``<deployment id>``      | woken when the sha arrives |
| 103| Deployments awaiting a repository         | Query / Put, Delete in the attribution's TransactWrite | table | PK=``S#<sp>#AWAITREPO#<repo>`` SK=``<deployment id>``     | |
| 104| Attribution owed to a deployment (outbox) | Put in the deployment's TransactWrite / GetItem / Update (lease) / Delete when final | table | PK=``S#<sp>#DEP#<id>`` SK=``OUTBOX`` | attrs ``created_at``, ``sweeps``, ``superseded`` (what an upsert left to clean) |
| 105| Outbox entries due, oldest first (sweep)  | Query (range, asc)   | GSI1  | GSI1PK=``S#<sp>#ATTRDUE`` GSI1SK up to ``<now>`` (``attribution_due_range``) | GSI1SK=``<due>#<id>``; the recompute re-drives what is due |
| 106| A deployment's shipped changes, page n≥1  | GetItem / in the attribution's TransactWrite (BatchWrite when large) | table | PK=``S#<sp>#DEP#<id>`` SK=``CHANGES#<details id>#<nnnn>`` | page 0 is on the deployment; ≤ 64 KB a page |
| 107| Corrections of a deployment, newest first | Put in the correction's TransactWrite / Query (desc) | table | PK=``S#<sp>#CORR#D#<id>`` SK=``<at>#<revision, 16 digits><1: a removal>#<record id>`` | kept when the deployment is deleted (audit); ``CORR#F#<id>`` a failure event's |
| 108| A branch range a stream shipped (ledger)  | Query (between) / Put in the attribution's TransactWrite | table | PK=``S#<sp>#LEDGER#<streamKey>`` SK=``R#<repo>#<branch>#<zero-padded up_to>`` | attrs ``after``, ``up_to``, ``skipped`` shas, ``deployment_id``: the range's commits count as shipped (pattern 100 holds only the others); ``R#~<sha256>#…`` when long |
| 110| Incident webhook configuration of a source | GetItem (consistent) / PutItem | table | PK=``S#<sp>#INCIDENTS`` SK=``<source>`` | ``pagerduty``, ``opsgenie``: secret (or its hash) and the service -> project/environment mapping |
| 111| Incident webhook delivery seen            | GetItem / PutItem    | table | PK=``S#<sp>#INCDELIVERY#<source>#<delivery id>`` SK=``DELIVERY`` | PagerDuty event id, Opsgenie ``<alertId>:<action>``; TTL 30 days |
| 120| Daily rollups of every stream, one year  | Query (all pages) / BatchWrite | table | PK=``S#<sp>#ROLLUP#D#<YYYY>`` SK=``<streamKey>`` | GitLab-style ``/dora/metrics``; attrs ``blob`` (zlib columnar days), ``computed_at`` |
| 121| Daily failure rollups of a (project, env) | Query / BatchWrite (with 120) | table | PK=``S#<sp>#ROLLUP#F`` SK=``<projectId>/<environmentId>`` | every year in one item; rewritten whole by a stream's recompute |

Filters on ``environment``, ``tenant`` and ``state`` of pattern 10/11 are FilterExpressions on
a time-bounded Query (never a Scan); a filter on both project and environment uses pattern 11.
Datadog's lists (``dal.event_search``) read one partition of pattern 12 (a stream: the query pins
service and env and the project has one stream there), 11 (a project) or 10 by time, pattern 15 for
failures, time-bounded in the key condition, the query evaluated on each item read; the project's
streams come from patterns 44 and 14 by the project's prefix (pattern 17's ``begins_with``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from dora_insights.domain.times import format_instant

# Attribute and index names
PK: Final = "PK"
SK: Final = "SK"
TYPE: Final = "type"
TTL: Final = "expires_at"


def expired(item: Mapping[str, Any], now: datetime) -> bool:
    """Whether ``item`` is past its TTL (``TTL``, epoch seconds) at ``now``. DynamoDB deletes an expired item
    some time after it expires (within days), and reads return it until then: a read of an item that expires
    checks it here, so it lasts as long as documented, in AWS as locally (moto never deletes it)."""
    ttl = item.get(TTL)
    return ttl is not None and int(ttl) <= now.timestamp()


GSI1: Final = "GSI1"
GSI2: Final = "GSI2"
GSI3: Final = "GSI3"
GSI1PK, GSI1SK = "GSI1PK", "GSI1SK"
GSI2PK, GSI2SK = "GSI2PK", "GSI2SK"
GSI3PK, GSI3SK = "GSI3PK", "GSI3SK"
INDEX_KEYS: Final[dict[str | None, tuple[str, str]]] = {
    None: (PK, SK),
    GSI1: (GSI1PK, GSI1SK),
    GSI2: (GSI2PK, GSI2SK),
    GSI3: (GSI3PK, GSI3SK),
}

# Entity types (the ``type`` attribute)
T_SPACE: Final = "Space"
T_SPACE_REGISTRY: Final = "SpaceRegistration"
T_COUNTER: Final = "Counter"
T_API_KEY: Final = "ApiKey"
T_API_KEY_LOOKUP: Final = "ApiKeyLookup"
T_CATALOGUE_NAME: Final = "CatalogueName"
T_CATALOGUE_ID: Final = "CatalogueId"
T_CATALOGUE_TAG: Final = "CatalogueTag"
T_DEPLOYMENT: Final = "Deployment"
T_IDEMPOTENCY: Final = "Idempotency"
T_DIRTY_STREAM: Final = "DirtyStream"
T_FAILURE: Final = "FailureEvent"

_ID_WIDTH: Final = 10  # catalogue numbers are zero-padded so ids list in number order


def _space(space_id: str) -> str:
    if not space_id or "#" in space_id:
        raise ValueError("a space id is non-empty and has no '#'")
    return f"S#{space_id}#"


def key(pk: str, sk: str) -> dict[str, str]:
    """A primary key as a plain dict."""
    return {PK: pk, SK: sk}


# --- system items (no space) -------------------------------------------------------------
def api_key_lookup(key_hash: str) -> dict[str, str]:
    """Pattern 1."""
    return key(f"KEY#{key_hash}", "KEY")


def space_counter() -> dict[str, str]:
    """Pattern 2."""
    return key("SYS#COUNTER", "Spaces")


SPACE_REGISTRY_PK: Final = "SYS#SPACES"


def space_registration(space_id: str) -> dict[str, str]:
    """Pattern 3."""
    _space(space_id)
    return key(SPACE_REGISTRY_PK, space_id)


# --- space items -------------------------------------------------------------------------
def space(space_id: str) -> dict[str, str]:
    """Pattern 4."""
    return key(_space(space_id) + "SPACE", "SPACE")


def space_numbers(space_id: str) -> dict[str, str]:
    """Pattern 5: one item holding every per-space counter as an attribute."""
    return key(_space(space_id) + "SPACE", "COUNTER")


def api_keys_pk(space_id: str) -> str:
    """Pattern 6."""
    return _space(space_id) + "APIKEY"


def api_key(space_id: str, key_id: str) -> dict[str, str]:
    """Pattern 6, one key."""
    return key(api_keys_pk(space_id), key_id)


def catalogue_pk(space_id: str, kind: str) -> str:
    """Patterns 7 and 8."""
    return f"{_space(space_id)}CAT#{kind}"


def catalogue_name(space_id: str, kind: str, name: str) -> dict[str, str]:
    """Pattern 7: names are unique per kind, compared case-insensitively."""
    return key(catalogue_pk(space_id, kind), "N#" + name.casefold())


CATALOGUE_ID_PREFIX: Final = "I#"


def catalogue_id(space_id: str, kind: str, number: int) -> dict[str, str]:
    """Pattern 8."""
    return key(catalogue_pk(space_id, kind), f"{CATALOGUE_ID_PREFIX}{number:0{_ID_WIDTH}d}")


CATALOGUE_TAG_PREFIX: Final = "T#"


def catalogue_tag(space_id: str, kind: str, number: int, tag: str) -> dict[str, str]:
    """Pattern 8b: one tag of tenant tag set ``number``."""
    return key(catalogue_pk(space_id, kind), f"{CATALOGUE_TAG_PREFIX}{number:0{_ID_WIDTH}d}#{tag}")


def catalogue_tag_set_number(sort_key: str) -> int:
    """The set number a pattern 8b sort key names."""
    return int(sort_key[len(CATALOGUE_TAG_PREFIX) :].partition("#")[0])


def deployment_pk(space_id: str, deployment_id: str) -> str:
    """The partition of a deployment (pattern 9) and of what its attribution keeps beside it (104, 106)."""
    return f"{_space(space_id)}DEP#{deployment_id}"


def deployment(space_id: str, deployment_id: str) -> dict[str, str]:
    """Pattern 9."""
    return key(deployment_pk(space_id, deployment_id), "DEP")


def deployments_by_time(space_id: str) -> str:
    """Pattern 10 partition."""
    return _space(space_id) + "DEPS"


def deployments_by_project(space_id: str, project_id: str) -> str:
    """Pattern 11 partition."""
    return f"{_space(space_id)}DEPS#P#{project_id}"


def deployments_by_stream(space_id: str, stream: str) -> str:
    """Pattern 12 partition."""
    return f"{_space(space_id)}STREAM#{stream}"


def time_sort(finished_at: str, item_id: str) -> str:
    """Sort key of patterns 10, 11 and 15: time, then id (stored times are fixed width)."""
    return f"{finished_at}#{item_id}"


def time_range(lowest: datetime | None, highest: datetime | None) -> tuple[str, str]:
    """Sort-key bounds (inclusive) of patterns 10, 11 and 15 for items whose time is within
    [lowest, highest] (None leaves that end open): every id of ``highest`` is in."""
    low = format_instant(lowest) if lowest is not None else "0"
    high = format_instant(highest) if highest is not None else "9"
    return (low, f"{high}#\uffff")


def stream_sort(finished_at: str, started_at: str | None, deployment_id: str) -> str:
    """Sort key of pattern 12: METRICS §1 stream order (finish, then start, then id)."""
    return f"{finished_at}#{started_at or finished_at}#{deployment_id}"


def deployment_indexes(
    space_id: str, deployment_id: str, project_id: str, stream: str, finished_at: str, started_at: str | None
) -> dict[str, str]:
    """The GSI attributes of a deployment item (patterns 10–12)."""
    return {
        GSI1PK: deployments_by_time(space_id),
        GSI1SK: time_sort(finished_at, deployment_id),
        GSI2PK: deployments_by_project(space_id, project_id),
        GSI2SK: time_sort(finished_at, deployment_id),
        GSI3PK: deployments_by_stream(space_id, stream),
        GSI3SK: stream_sort(finished_at, started_at, deployment_id),
    }


def idempotency(space_id: str, dialect: str, client_id: str) -> dict[str, str]:
    """Pattern 13."""
    return key(f"{_space(space_id)}IDEM#{dialect}#{client_id}", "IDEM")


def dirty_streams_pk(space_id: str) -> str:
    """Pattern 14."""
    return _space(space_id) + "DIRTY"


def dirty_stream(space_id: str, stream: str) -> dict[str, str]:
    """Pattern 14, one stream."""
    return key(dirty_streams_pk(space_id), stream)


T_STREAM_HEALTH: Final = "StreamHealth"
T_SPACE_HEALTH: Final = "SpaceHealth"
T_RECOMPUTE_CURSOR: Final = "RecomputeCursor"
STREAM_HEALTH_PREFIX: Final = "STREAM#"


def health_pk(space_id: str) -> str:
    """Patterns 18 and 19: a space's recompute health in one small partition."""
    return _space(space_id) + "HEALTH"


def stream_health(space_id: str, stream: str) -> dict[str, str]:
    """Pattern 18, one failing or quarantined stream."""
    return key(health_pk(space_id), STREAM_HEALTH_PREFIX + stream)


def space_health(space_id: str) -> dict[str, str]:
    """Pattern 19."""
    return key(health_pk(space_id), "SPACE")


def recompute_cursor() -> dict[str, str]:
    """Pattern 20 (system: the rotation of spaces over scheduled runs)."""
    return key("SYS#RECOMPUTE", "CURSOR")


def failure(space_id: str, failure_id: str) -> dict[str, str]:
    """Pattern 16."""
    return key(f"{_space(space_id)}FAIL#{failure_id}", "FAIL")


def failures_by_time(space_id: str) -> str:
    """Pattern 15 partition."""
    return _space(space_id) + "FAILS"


REPORTS: Final = "REPORTS"
T_REPORT: Final = "InsightsReport"


def reports_pk(space_id: str) -> str:
    """Pattern 40: every report of a space in one partition (a space has few reports)."""
    return _space(space_id) + REPORTS


def report(space_id: str, number: int) -> dict[str, str]:
    """Pattern 40, one report by its number (``InsightsReports-<number>``)."""
    return key(reports_pk(space_id), f"{number:0{_ID_WIDTH}d}")


T_INSIGHT: Final = "Insight"
T_INSIGHT_VIEW: Final = "InsightView"
T_INSIGHT_VIEW_COUNT: Final = "InsightViewCount"
T_INSIGHT_LAST_VIEWED: Final = "InsightLastViewed"
T_ACTIVITY: Final = "Activity"
T_SHARING: Final = "SharingConfiguration"
T_SHARE_TOKEN: Final = "ShareToken"
T_SHARE_SESSION: Final = "ShareSession"
T_SHARE_LOGIN_FAILURES: Final = "ShareLoginFailures"
T_THRESHOLD: Final = "Threshold"


def _number(value: int) -> str:
    return f"{value:0{_ID_WIDTH}d}"


def insights_pk(space_id: str) -> str:
    """Pattern 50."""
    return _space(space_id) + "INSIGHTS"


def insight(space_id: str, insight_id: int) -> dict[str, str]:
    """Pattern 50, one insight."""
    return key(insights_pk(space_id), _number(insight_id))


def insight_view(space_id: str, day: str, insight_id: int, viewer: str) -> dict[str, str]:
    """Pattern 51."""
    return key(f"{_space(space_id)}VIEWS#{day}", f"{_number(insight_id)}#{viewer}")


def insight_view_counts_pk(space_id: str, day: str) -> str:
    """Pattern 52."""
    return f"{_space(space_id)}VIEWCOUNTS#{day}"


def insight_view_count(space_id: str, day: str, insight_id: int) -> dict[str, str]:
    """Pattern 52, one insight's count of a day."""
    return key(insight_view_counts_pk(space_id, day), _number(insight_id))


def last_viewed_pk(space_id: str, viewer: str) -> str:
    """Pattern 53."""
    return f"{_space(space_id)}LASTVIEWED#{viewer}"


def last_viewed(space_id: str, viewer: str, insight_id: int) -> dict[str, str]:
    """Pattern 53, one insight."""
    return key(last_viewed_pk(space_id, viewer), _number(insight_id))


def activity_pk(space_id: str) -> str:
    """Pattern 54."""
    return _space(space_id) + "ACTIVITY"


def activity(space_id: str, at: str, insight_id: int, unique: str) -> dict[str, str]:
    """Patterns 54 and 55: one activity entry with its per-insight index attributes."""
    return {
        **key(activity_pk(space_id), f"{at}#{_number(insight_id)}#{unique}"),
        GSI1PK: insight_activity_pk(space_id, insight_id),
        GSI1SK: f"{at}#{unique}",
    }


def insight_activity_pk(space_id: str, insight_id: int) -> str:
    """Pattern 55 partition."""
    return f"{_space(space_id)}ACTIVITY#{_number(insight_id)}"


def sharing(space_id: str, insight_id: int) -> dict[str, str]:
    """Pattern 56."""
    return key(insights_pk(space_id), f"{_number(insight_id)}#SHARING")


def share_token(token_hash: str) -> dict[str, str]:
    """Pattern 57 (system: a public link resolves to its space)."""
    return key(f"SHARE#{token_hash}", "SHARE")


def share_session(session_hash: str) -> dict[str, str]:
    """Pattern 58 (system)."""
    return key(f"SHARESESSION#{session_hash}", "SESSION")


def share_login_failures(space_id: str, insight_id: int, window: str) -> dict[str, str]:
    """Pattern 59: the login attempts of one link in one 10-minute window (attribute ``attempts``)."""
    return key(f"{_space(space_id)}SHARELOGIN#{_number(insight_id)}", window)


def thresholds_pk(space_id: str) -> str:
    """Pattern 60."""
    return _space(space_id) + "THRESHOLDS"


def threshold(space_id: str, insight_id: int, threshold_id: str) -> dict[str, str]:
    """Pattern 60, one threshold."""
    return key(thresholds_pk(space_id), f"{_number(insight_id)}#{threshold_id}")


def insight_thresholds_prefix(insight_id: int) -> str:
    """Sort-key prefix of one insight's thresholds in pattern 60."""
    return _number(insight_id) + "#"


T_ALERT_NOTIFICATION: Final = "AlertNotification"
ALERT_OUTBOX_PREFIX: Final = "OUTBOX#"  # sorts after every threshold's zero-padded insight id


def alert_notification(space_id: str, notification_id: str) -> dict[str, str]:
    """Pattern 61: an alert event awaiting delivery, beside the space's thresholds (one Query reads both)."""
    return key(thresholds_pk(space_id), ALERT_OUTBOX_PREFIX + notification_id)


T_ALERT_DESTINATION: Final = "AlertDestination"
T_ALERT_DELIVERY: Final = "AlertDelivery"
T_ALERT_DELIVERED: Final = "AlertDelivered"
T_ALERT_DESTINATION_COUNT: Final = "AlertDestinationCount"
T_ALERT_LAST_TRANSITION: Final = "AlertLastTransition"
ALERT_DELIVERY_PREFIX: Final = "L#"
ALERT_DELIVERED_PREFIX: Final = "D#"
ALERT_LAST_TRANSITION_PREFIX: Final = "T#"


def alert_destinations_pk(space_id: str) -> str:
    """Pattern 62 partition."""
    return _space(space_id) + "ALERTDEST"


def alert_destination(space_id: str, destination_id: str) -> dict[str, str]:
    """Pattern 62: one destination."""
    return key(alert_destinations_pk(space_id), destination_id)


def alert_destination_count(space_id: str) -> dict[str, str]:
    """Pattern 65: how many destinations the space has (a partition of its own: pattern 62 lists them all)."""
    return key(_space(space_id) + "ALERTDESTS", "COUNT")


def alert_deliveries_pk(space_id: str, destination_id: str) -> str:
    """Patterns 63 and 64 partition: what was sent to one destination."""
    return f"{_space(space_id)}ALERTDEST#{destination_id}"


def alert_delivery(space_id: str, destination_id: str, attempted_at: str, delivery_id: str) -> dict[str, str]:
    """Pattern 63: one attempt, newest first by its time."""
    return key(alert_deliveries_pk(space_id, destination_id), f"{ALERT_DELIVERY_PREFIX}{attempted_at}#{delivery_id}")


def alert_delivered(space_id: str, destination_id: str, notification_id: str) -> dict[str, str]:
    """Pattern 64: the mark that an event reached a destination (a retry of the event skips it)."""
    return key(alert_deliveries_pk(space_id, destination_id), ALERT_DELIVERED_PREFIX + notification_id)


def alert_last_transition(space_id: str, destination_id: str, threshold_id: str) -> dict[str, str]:
    """Pattern 66: the check time of the latest transition of a threshold the destination took (an older one
    is not sent there)."""
    return key(alert_deliveries_pk(space_id, destination_id), ALERT_LAST_TRANSITION_PREFIX + threshold_id)


T_FIGURES: Final = "StreamFigures"
T_REPORT_STATE: Final = "ReportState"
T_AGGREGATES: Final = "ReportAggregates"


def figures_pk(space_id: str) -> str:
    """Pattern 41: every stream's per-deployment figures in one partition (one paged Query per run)."""
    return _space(space_id) + "FIGURES"


def stream_figures(space_id: str, stream: str, generation: str, month: str, chunk: int) -> dict[str, str]:
    """Pattern 41, chunk ``chunk`` of one generation, its first record completed in ``month``
    (a chunk spans consecutive months)."""
    return key(figures_pk(space_id), f"{stream}#{generation}#{month}#{chunk:03d}")


def stream_figures_prefix(stream: str) -> str:
    """Sort-key prefix of one stream's chunks (every generation) in pattern 41."""
    return stream + "#"


T_STREAM: Final = "Stream"


def streams_pk(space_id: str) -> str:
    """Pattern 44."""
    return _space(space_id) + "STREAMS"


def stream_registration(space_id: str, stream: str) -> dict[str, str]:
    """Pattern 44, one stream."""
    return key(streams_pk(space_id), stream)


def report_state(space_id: str, number: int) -> dict[str, str]:
    """Pattern 42."""
    return key(reports_pk(space_id), f"{number:0{_ID_WIDTH}d}#STATE")


def aggregates_pk(space_id: str, number: int, generation: str) -> str:
    """Pattern 43 partition: one generation of one report's aggregates."""
    return f"{_space(space_id)}AGG#{number:0{_ID_WIDTH}d}#{generation}"


def aggregates_view(split: str, granularity: str, tag_set_id: str | None = None) -> str:
    """Pattern 43: the name of one view in its sort keys (``<split>#<granularity>``; a tenant tag set
    split ``TenantTagSet:<tag set id>#<granularity>``)."""
    head = f"{split}:{tag_set_id}" if split == "TenantTagSet" else split
    return f"{head}#{granularity}"


def aggregates_prefix(view: str, part: str) -> str:
    """Pattern 43 sort-key prefix of one part of one view (``<split>#<granularity>``)."""
    return f"{view}#{part}#"


def aggregates(space_id: str, number: int, generation: str, view: str, part: str, chunk: int) -> dict[str, str]:
    """Pattern 43, one chunk of one part (``D`` the numbers, ``R`` the rendered text) of one view."""
    return key(aggregates_pk(space_id, number, generation), f"{aggregates_prefix(view, part)}{chunk:04d}")


# --- Orlo dialect (patterns 90–96) ---------------------------------------------------------
T_ORLO_RELEASE: Final = "OrloRelease"
T_ORLO_PACKAGE: Final = "OrloPackage"
T_ORLO_RESULT: Final = "OrloPackageResult"
T_ORLO_TOKEN: Final = "OrloToken"
ORLO_NO_TIME: Final = "~"  # sorts after every stored time: releases without stime list last
ORLO_BEFORE_ANY_TIME: Final = "0"  # sorts before every stored time (``1970-...`` onwards); never empty


def orlo_release(space_id: str, release_id: str) -> dict[str, str]:
    """Pattern 90."""
    return key(f"{_space(space_id)}ORLO#R#{release_id}", "RELEASE")


def orlo_releases_pk(space_id: str) -> str:
    """Pattern 91 partition (GSI1)."""
    return _space(space_id) + "ORLO#RELEASES"


def orlo_user_releases_pk(space_id: str, user: str) -> str:
    """Pattern 92 partition (GSI2)."""
    return f"{_space(space_id)}ORLO#USER#{user}"


def orlo_team_releases_pk(space_id: str, team: str) -> str:
    """Pattern 93 partition (GSI3)."""
    return f"{_space(space_id)}ORLO#TEAM#{team}"


def orlo_release_indexes(
    space_id: str, release_id: str, stime: str | None, user: str, team: str | None
) -> dict[str, str]:
    """The GSI attributes of a release item (patterns 91–93); ``stime`` fixed-width UTC text or None."""
    sort = time_sort(stime or ORLO_NO_TIME, release_id)
    indexes = {
        GSI1PK: orlo_releases_pk(space_id),
        GSI1SK: sort,
        GSI2PK: orlo_user_releases_pk(space_id, user),
        GSI2SK: sort,
    }
    if team is not None:
        indexes[GSI3PK] = orlo_team_releases_pk(space_id, team)
        indexes[GSI3SK] = sort
    return indexes


def orlo_stime_range(lowest: str | None, highest: str | None) -> tuple[str, str]:
    """Sort-key bounds (inclusive) of patterns 91–93 for release stimes within [lowest, highest].

    An open lower end is ``ORLO_BEFORE_ANY_TIME``, never ``""``: DynamoDB refuses an empty key value
    in a key condition (AWS and moto alike), which made ``?user=X&stime_before=T`` fail."""
    low = lowest or ORLO_BEFORE_ANY_TIME
    return (low, f"{highest}#{ORLO_NO_TIME}" if highest is not None else ORLO_NO_TIME * 2)


def orlo_package(space_id: str, package_id: str) -> dict[str, str]:
    """Pattern 94."""
    return key(f"{_space(space_id)}ORLO#P#{package_id}", "PACKAGE")


def orlo_package_result(space_id: str, package_id: str, at: str, result_id: str) -> dict[str, str]:
    """Pattern 95."""
    return key(f"{_space(space_id)}ORLO#P#{package_id}", f"RESULT#{at}#{result_id}")


def orlo_token(space_id: str, token_hash: str) -> dict[str, str]:
    """Pattern 96."""
    return key(f"{_space(space_id)}ORLOTOKEN#{token_hash}", "TOKEN")


T_LEDGER_CHANGE: Final = "LedgerChange"
T_LEDGER_MARK: Final = "LedgerMark"
T_LEDGER_RANGE: Final = "LedgerRange"
T_AWAITING: Final = "AwaitingAttribution"


def ledger_pk(space_id: str, stream: str) -> str:
    """Patterns 100 and 101."""
    return f"{_space(space_id)}LEDGER#{stream}"


def ledger_change(space_id: str, stream: str, change_id: str) -> dict[str, str]:
    """Pattern 100."""
    return key(ledger_pk(space_id, stream), f"C#{change_id}")


_MAX_SORT_KEY_BYTES: Final = 1024  # DynamoDB's limit (dal.limits checks every key against it)


def ledger_mark(space_id: str, stream: str, repository: str, branch: str) -> dict[str, str]:
    """Pattern 101. A repository and a branch name that together would overflow the 1024-byte sort
    key are named by the SHA-256 of the pair instead (``M#~<hex>``; the mark is only ever read by
    its exact key), so a long branch never stalls attribution."""
    sort = f"M#{repository}#{branch}"
    if len(sort.encode("utf-8", errors="surrogatepass")) > _MAX_SORT_KEY_BYTES:
        digest = hashlib.sha256(f"{repository}#{branch}".encode("utf-8", errors="surrogatepass")).hexdigest()
        sort = f"M#~{digest}"
    return key(ledger_pk(space_id, stream), sort)


def ledger_range_prefix(repository: str, branch: str) -> str:
    """Pattern 108: the sort-key prefix of a stream's ranges on one branch (the SHA-256 of the pair when
    long, as pattern 101; an item's ``repository`` and ``branch`` attributes name it exactly)."""
    sort = f"R#{repository}#{branch}#"
    if len(sort.encode("utf-8", errors="surrogatepass")) > _MAX_SORT_KEY_BYTES - 64:
        digest = hashlib.sha256(f"{repository}#{branch}".encode("utf-8", errors="surrogatepass")).hexdigest()
        sort = f"R#~{digest}#"
    return sort


def ledger_range(space_id: str, stream: str, repository: str, branch: str, up_to: int) -> dict[str, str]:
    """Pattern 108: one shipped range, by the branch position it ends at."""
    return key(ledger_pk(space_id, stream), ledger_range_prefix(repository, branch) + position_sort(up_to))


def awaiting_sha(space_id: str, sha_prefix: str, deployment_id: str) -> dict[str, str]:
    """Pattern 102."""
    return key(awaiting_sha_pk(space_id, sha_prefix), deployment_id)


def awaiting_sha_pk(space_id: str, sha_prefix: str) -> str:
    """Pattern 102 partition."""
    return f"{_space(space_id)}AWAIT#{sha_prefix}"


def awaiting_repository(space_id: str, repository: str, deployment_id: str) -> dict[str, str]:
    """Pattern 103."""
    return key(awaiting_repository_pk(space_id, repository), deployment_id)


def awaiting_repository_pk(space_id: str, repository: str) -> str:
    """Pattern 103 partition."""
    return f"{_space(space_id)}AWAITREPO#{repository}"


T_ATTRIBUTION_OUTBOX: Final = "AttributionOutbox"
T_ATTRIBUTION_PAGE: Final = "AttributionPage"


def attribution_outbox(space_id: str, deployment_id: str) -> dict[str, str]:
    """Pattern 104: the attribution a deployment is owed, written with the deployment (an outbox)."""
    return key(deployment_pk(space_id, deployment_id), "OUTBOX")


def attribution_due_pk(space_id: str) -> str:
    """Pattern 105 partition (GSI1)."""
    return _space(space_id) + "ATTRDUE"


def attribution_outbox_indexes(space_id: str, deployment_id: str, due: str) -> dict[str, str]:
    """Pattern 105: the GSI1 attributes of an outbox item, due at ``due`` (a stored instant)."""
    return {GSI1PK: attribution_due_pk(space_id), GSI1SK: f"{due}#{deployment_id}"}


def attribution_due_range(now: str) -> tuple[str, str]:
    """Pattern 105 sort-key bounds (inclusive) of every outbox item due at or before ``now``."""
    return ("0", f"{now}#\uffff")


def attribution_page(space_id: str, deployment_id: str, details_id: str, page: int) -> dict[str, str]:
    """Pattern 106: page ``page`` (1, 2, ...) of the changes a deployment shipped."""
    return key(deployment_pk(space_id, deployment_id), f"CHANGES#{details_id}#{page:04d}")


T_CORRECTION: Final = "Correction"


def corrections_pk(space_id: str, target: str, target_id: str) -> str:
    """Pattern 107 partition: the corrections of one deployment (``target`` ``D``) or failure event (``F``)."""
    if target not in ("D", "F"):
        raise ValueError("a correction concerns a deployment (D) or a failure event (F)")
    return f"{_space(space_id)}CORR#{target}#{target_id}"


def correction(
    space_id: str, target: str, target_id: str, at: str, record_id: str, *, revision: int | None, removal: bool
) -> dict[str, str]:
    """Pattern 107, one correction record: sorted by time, then by the revision it made (a removal after
    the correction that made the revision it removed), then by its id. Records of one millisecond are in
    the order they were made (an id is random within its millisecond, so it alone shuffled them)."""
    order = f"{revision or 0:016d}{int(removal)}"
    return key(corrections_pk(space_id, target, target_id), f"{at}#{order}#{record_id}")


def space_prefix(space_id: str) -> str:
    """The prefix every partition key of the space starts with (cursor checks use it)."""
    return _space(space_id)


# --- code data: repositories, commits, pull requests (patterns 70–80) ----------------------
T_REPOSITORY: Final = "Repository"
T_BRANCH_COUNTER: Final = "BranchCounter"
T_COMMIT: Final = "Commit"
T_PULL_REQUEST: Final = "PullRequest"
T_PULL_REQUEST_PLACEHOLDER: Final = "PullRequestPlaceholder"
T_GITHUB_PULL: Final = "GithubPullId"
T_WEBHOOK_DELIVERY: Final = "WebhookDelivery"
_POSITION_WIDTH: Final = 12


def _repo(space_id: str, repository: str) -> str:
    if not repository or "#" in repository:
        raise ValueError("a repository name is non-empty and has no '#'")
    return f"{_space(space_id)}REPO#{repository}"


def repository(space_id: str, repository_name: str) -> dict[str, str]:
    """Pattern 70, with its GSI1 attributes (the space's repositories by name)."""
    return {
        **key(_repo(space_id, repository_name), "REPO"),
        GSI1PK: repositories_pk(space_id),
        GSI1SK: repository_name,
    }


def repositories_pk(space_id: str) -> str:
    """Pattern 70 (GSI1 partition)."""
    return _space(space_id) + "REPOS"


def branch_counter(space_id: str, repository_name: str, branch: str) -> dict[str, str]:
    """Pattern 71."""
    return key(_repo(space_id, repository_name), f"BRANCH#{branch}")


def commits_pk(space_id: str, repository_name: str) -> str:
    """Pattern 72 partition."""
    return _repo(space_id, repository_name) + "#C"


def commit(space_id: str, repository_name: str, sha: str, branch: str) -> dict[str, str]:
    """Pattern 72, one commit at its place in one branch."""
    return key(commits_pk(space_id, repository_name), f"{sha}#{branch}")


def branch_commits_pk(space_id: str, repository_name: str, branch: str) -> str:
    """Pattern 73 partition (GSI1)."""
    return f"{_repo(space_id, repository_name)}#B#{branch}"


def position_sort(position: int) -> str:
    """Pattern 73 sort key: zero-padded, so positions sort as strings."""
    return f"{position:0{_POSITION_WIDTH}d}"


def pull_request_commits_pk(space_id: str, repository_name: str, number: int) -> str:
    """Pattern 74 partition (GSI2)."""
    return f"{_repo(space_id, repository_name)}#PRC#{number}"


def commit_indexes(
    space_id: str, repository_name: str, sha: str, branch: str, position: int, pull_request: int | None
) -> dict[str, str]:
    """The GSI attributes of a commit item (patterns 73 and 74)."""
    indexes = {
        GSI1PK: branch_commits_pk(space_id, repository_name, branch),
        GSI1SK: position_sort(position),
    }
    if pull_request is not None:
        indexes[GSI2PK] = pull_request_commits_pk(space_id, repository_name, pull_request)
        indexes[GSI2SK] = sha
    return indexes


def pull_requests_pk(space_id: str, repository_name: str) -> str:
    """Pattern 75 partition."""
    return _repo(space_id, repository_name) + "#PR"


def pull_request(space_id: str, repository_name: str, number: int) -> dict[str, str]:
    """Pattern 75."""
    return key(pull_requests_pk(space_id, repository_name), _number(number))


def pull_requests_by_sha_pk(space_id: str, sha_prefix: str) -> str:
    """Patterns 76 (GSI1, merge commit) and 77 (GSI2, head commit): the sha's first 7 characters."""
    return f"{_space(space_id)}PRSHA#{sha_prefix}"


def merged_pull_requests_pk(space_id: str, repository_name: str, base_ref: str) -> str:
    """Pattern 78 partition (GSI3)."""
    return f"{_repo(space_id, repository_name)}#MERGED#{base_ref}"


def merged_sort(merged_at: str, number: int) -> str:
    """Pattern 78 sort key."""
    return f"{merged_at}#{_number(number)}"


def pull_request_indexes(
    space_id: str,
    repository_name: str,
    number: int,
    base_ref: str,
    merge_sha_prefix: str | None,
    head_sha_prefix: str | None,
    merged_at: str | None,
) -> dict[str, str]:
    """The GSI attributes of a pull request item (patterns 76–78)."""
    indexes: dict[str, str] = {}
    member = f"{repository_name}#{_number(number)}"
    if merge_sha_prefix is not None:
        indexes[GSI1PK] = pull_requests_by_sha_pk(space_id, merge_sha_prefix)
        indexes[GSI1SK] = member
    if head_sha_prefix is not None:
        indexes[GSI2PK] = pull_requests_by_sha_pk(space_id, head_sha_prefix)
        indexes[GSI2SK] = member
    if merged_at is not None:
        indexes[GSI3PK] = merged_pull_requests_pk(space_id, repository_name, base_ref)
        indexes[GSI3SK] = merged_sort(merged_at, number)
    return indexes


def github_pull(space_id: str, github_id: int) -> dict[str, str]:
    """Pattern 79."""
    return key(f"{_space(space_id)}GHPR#{github_id}", "GHPR")


def webhook_delivery(space_id: str, delivery_id: str) -> dict[str, str]:
    """Pattern 80 (a GitHub delivery id, or ``gitlab:<Idempotency-Key>`` for GitLab's)."""
    return key(f"{_space(space_id)}GHDELIVERY#{delivery_id}", "DELIVERY")


# --- failure events (patterns 15–17) -------------------------------------------------------
def failure_indexes(space_id: str, failure_id: str, started_at: str) -> dict[str, str]:
    """The GSI attributes of a failure event item (pattern 15)."""
    return {GSI1PK: failures_by_time(space_id), GSI1SK: time_sort(started_at, failure_id)}


def project_streams_prefix(project_id: str) -> str:
    """Pattern 17: sort-key prefix of one project's streams in pattern 44 (stream keys start with it)."""
    return project_id + "/"


# --- incident webhooks (patterns 110-111) ---------------------------------------------------
T_INCIDENT_SOURCE: Final = "IncidentSource"
T_INCIDENT_DELIVERY: Final = "IncidentDelivery"
T_INCIDENT_RESOLUTION: Final = "IncidentResolution"


def incident_source(space_id: str, source: str) -> dict[str, str]:
    """Pattern 110: one incident tool's configuration in a space."""
    return key(f"{_space(space_id)}INCIDENTS", source)


def incident_delivery(space_id: str, source: str, delivery_id: str) -> dict[str, str]:
    """Pattern 111: a webhook delivery of an incident tool already applied."""
    return key(f"{_space(space_id)}INCDELIVERY#{source}#{delivery_id}", "DELIVERY")


def incident_resolution(space_id: str, source: str, incident_id: str) -> dict[str, str]:
    """Pattern 112: the end of an incident whose resolution came before its trigger and could not be
    placed on its own (its service not mapped), kept for the trigger."""
    return key(f"{_space(space_id)}INCRESOLVED#{source}#{incident_id}", "RESOLVED")


# --- daily rollups of GitLab's DORA metrics API (patterns 120-121) ----------------------------
T_ROLLUP_DEPLOYMENTS: Final = "DeploymentRollup"
T_ROLLUP_FAILURES: Final = "FailureRollup"


def rollup_deployments_pk(space_id: str, year: int) -> str:
    """Pattern 120 partition: every stream's daily rows of one calendar year."""
    return f"{_space(space_id)}ROLLUP#D#{year:04d}"


def rollup_deployments(space_id: str, year: int, stream: str) -> dict[str, str]:
    """Pattern 120: one stream's daily rows of one calendar year."""
    return key(rollup_deployments_pk(space_id, year), stream)


def rollup_failures_pk(space_id: str) -> str:
    """Pattern 121 partition: the daily failure rows of every (project, environment)."""
    return _space(space_id) + "ROLLUP#F"


def rollup_failures(space_id: str, project_id: str, environment_id: str) -> dict[str, str]:
    """Pattern 121: one (project, environment)'s daily failure rows, every year."""
    return key(rollup_failures_pk(space_id), f"{project_id}/{environment_id}")
