"""PagerDuty and Opsgenie incident webhooks with the tools' documented payloads (events/pagerduty_*.json,
events/opsgenie_*.json), through the real HTTP API event shape, against moto: configuration, signature,
redelivery, ignored events, unmapped services, and TimeToRestore in /summary after the recompute."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, NOW, Api, Clock
from tests.support.events import load_event

SP = {"spaceId": "Spaces-1"}
PD_SECRET = "pd-signing-secret-0123456789abcdef"
OG_SECRET = "og-shared-secret-0123456789abcdef"
PD_CONFIG = "/api/{spaceId}/webhooks/pagerduty"
OG_CONFIG = "/api/{spaceId}/webhooks/opsgenie"
PD_HOOK = "/webhooks/pagerduty/{spaceId}"
OG_HOOK = "/webhooks/opsgenie/{spaceId}"
# The documented payloads' times: PagerDuty 09:00:00 -> 10:30:00, Opsgenie 08:00:00.000 -> 08:45:00.447.
PD_RESTORE = 5400.0
OG_RESTORE = 2700.447


def configure(api: Api, route: str, body: dict[str, Any], key: str = ADMIN_KEY) -> Any:
    return api.call("PUT", route, path_params=SP, body=body, key=key)


@pytest.fixture
def hooked(api: Api, clock: Clock) -> Api:
    """Both tools configured; the functions' clock at ``NOW`` (the payloads' incidents are in the last 90 days)."""
    pd = configure(api, PD_CONFIG, {"secret": PD_SECRET, "services": {"Checkout API": {"project": "checkout"}}})
    assert pd.status == 200, pd.body
    og = configure(
        api,
        OG_CONFIG,
        {"secret": OG_SECRET, "services": {"payments api": {"project": "payments", "environment": "production"}}},
    )
    assert og.status == 200, og.body
    return api


def pagerduty(
    api: Api, payload: dict[str, Any], *, secret: str = PD_SECRET, header: str | None = None, space: str = "Spaces-1"
) -> Any:
    from dora_insights.dialects.incidents import pagerduty_signature

    raw = json.dumps(payload)
    signature = header if header is not None else pagerduty_signature(secret, raw.encode())
    headers = {"x-pagerduty-signature": signature, "user-agent": "PagerDuty-Webhook/V3.0"}
    return api.call("POST", PD_HOOK, path_params={"spaceId": space}, raw_body=raw, headers=headers)


def opsgenie(api: Api, payload: dict[str, Any], *, secret: str | None = OG_SECRET) -> Any:
    headers = {"x-opsgenie-secret": secret} if secret is not None else {}
    return api.call("POST", OG_HOOK, path_params=SP, raw_body=json.dumps(payload), headers=headers)


def summary(api: Api, store: Any) -> dict[str, Any]:
    from dora_insights.logic import recompute

    recompute.run(store, NOW)
    result = api.call("GET", "/api/{spaceId}/summary", path_params=SP, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return dict(result.body["time_to_restore"])


# --- configuration --------------------------------------------------------------------------------
def test_pagerduty_needs_its_signing_secret_the_first_time(api: Api) -> None:
    result = configure(api, PD_CONFIG, {"services": {"Checkout API": {"project": "checkout"}}})
    assert result.status == 400
    assert "secret" in result.body["message"]


def test_configuration_never_shows_a_secret_it_was_given(hooked: Api) -> None:
    shown = hooked.call("GET", PD_CONFIG, path_params=SP, key=ADMIN_KEY)
    assert shown.status == 200, shown.body
    assert shown.body["secret"] is None
    assert PD_SECRET not in json.dumps(shown.body)
    assert shown.body["services"] == {"Checkout API": {"project": "checkout", "environment": None}}
    assert shown.body["webhook_path"] == "/webhooks/pagerduty/Spaces-1"
    assert shown.body["secret_header"] == "X-PagerDuty-Signature"


def test_opsgenie_secret_is_generated_shown_once_and_stored_hashed(api: Api, store: Any) -> None:
    from dora_insights.dal import keys

    first = configure(api, OG_CONFIG, {"services": {"Payments API": {"project": "payments"}}})
    assert first.status == 200, first.body
    generated = first.body["secret"]
    assert generated.startswith("og_") and len(generated) > 30
    assert api.call("GET", OG_CONFIG, path_params=SP, key=ADMIN_KEY).body["secret"] is None
    stored = store.get(keys.incident_source("Spaces-1", "opsgenie"))
    assert generated not in json.dumps(stored)
    assert opsgenie(api, load_event("opsgenie_alert_create.json"), secret=generated).status == 201


def test_a_mapping_update_keeps_the_secret(hooked: Api) -> None:
    updated = configure(hooked, PD_CONFIG, {"services": {"Checkout API": {"project": "shop", "environment": "prod"}}})
    assert updated.status == 200, updated.body
    assert updated.body["services"]["Checkout API"] == {"project": "shop", "environment": "prod"}
    result = pagerduty(hooked, load_event("pagerduty_incident_triggered.json"))
    assert result.status == 201, result.body
    assert result.body["failure"]["projects"] == ["shop"]
    assert result.body["failure"]["environment"] == "prod"


def test_configuration_needs_an_admin_key_and_valid_names(api: Api, store: Any) -> None:
    from dora_insights.logic import admin

    _, writer = admin.create_api_key(store, "Spaces-1", "writer", ("deployments:write",), NOW)
    body = {"secret": PD_SECRET, "services": {}}
    assert configure(api, PD_CONFIG, body, key=writer).status == 403
    twice = {"secret": PD_SECRET, "services": {"A": {"project": "a"}, "a": {"project": "b"}}}
    assert configure(api, PD_CONFIG, twice).status == 400
    assert configure(api, PD_CONFIG, {"secret": "short"}).status == 400
    assert api.call("GET", OG_CONFIG, path_params=SP, key=ADMIN_KEY).status == 404


# --- PagerDuty ------------------------------------------------------------------------------------
def test_pagerduty_incident_becomes_a_failure_with_time_to_restore(hooked: Api, store: Any) -> None:
    opened = pagerduty(hooked, load_event("pagerduty_incident_triggered.json"))
    assert opened.status == 201, opened.body
    failure = opened.body["failure"]
    assert failure["id"] == "pagerduty-Q0RIJJZL24RC6W"
    assert (failure["source"], failure["projects"], failure["environment"]) == ("pagerduty", ["checkout"], "production")
    assert (failure["started_at"], failure["finished_at"]) == ("2024-02-28T09:00:00.000Z", None)
    assert (failure["name"], failure["severity"], failure["team"]) == (
        "Checkout API 5xx rate above 5%",
        "P1",
        "Engineering",
    )
    assert summary(hooked, store)["count"] == 0  # still open: no TimeToRestore yet

    acknowledged = pagerduty(hooked, load_event("pagerduty_incident_acknowledged.json"))
    assert acknowledged.status == 202
    assert acknowledged.body["ignored"] is True

    resolved = pagerduty(hooked, load_event("pagerduty_incident_resolved.json"))
    assert resolved.status == 200, resolved.body
    assert resolved.body["status"] == "resolved"
    assert resolved.body["failure"]["finished_at"] == "2024-02-28T10:30:00.000Z"
    restore = summary(hooked, store)
    assert (restore["count"], restore["median_seconds"]) == (1, PD_RESTORE)
    listed = hooked.call("GET", "/api/{spaceId}/failures", path_params=SP, key=ADMIN_KEY).body["items"]
    assert [f["id"] for f in listed] == ["pagerduty-Q0RIJJZL24RC6W"]


def test_pagerduty_wrong_missing_signature_unknown_or_unconfigured_space_are_the_same_401(
    hooked: Api, store: Any
) -> None:
    from dora_insights.logic import admin

    payload = load_event("pagerduty_incident_triggered.json")
    wrong = pagerduty(hooked, payload, secret="another-secret-0123456789")
    missing = pagerduty(hooked, payload, header="")
    unknown = pagerduty(hooked, payload, space="Spaces-99")
    admin.ensure_space(store, "Spaces-2", "Other", NOW)
    unconfigured = pagerduty(hooked, payload, space="Spaces-2")
    assert {r.status for r in (wrong, missing, unknown, unconfigured)} == {401}
    assert wrong.body == missing.body == unknown.body == unconfigured.body
    assert store.failures().get("Spaces-1", "pagerduty-Q0RIJJZL24RC6W") is None


@pytest.mark.parametrize("function", ["PagerdutyWebhookFunction", "OpsgenieWebhookFunction"])
def test_a_delivery_without_its_secret_header_is_refused_before_any_read(
    hooked: Api, function: str, lambda_context: Any
) -> None:
    """No DynamoDB read and no KMS decrypt for a delivery that cannot verify: a configured space and an
    unknown one cost and answer alike (a decrypt that KMS refused made a configured space answer 503)."""
    from tests.support import lambdas
    from tests.support.events import http_event

    route = PD_HOOK if function.startswith("Pagerduty") else OG_HOOK
    receive = lambdas.handler(function)
    answers = []
    with lambdas.running_as(function) as acting:
        for space in ("Spaces-1", "Spaces-99"):
            event = http_event("POST", route, path_params={"spaceId": space}, raw_body="{}", headers={})
            answers.append(receive(event, lambda_context))
    assert [a["statusCode"] for a in answers] == [401, 401]
    assert answers[0]["body"] == answers[1]["body"]
    assert [r.action for r in acting.allowed if r.action.startswith(("dynamodb:", "kms:"))] == []


def test_pagerduty_accepts_any_of_several_signatures_during_secret_rotation(hooked: Api) -> None:
    from dora_insights.dialects.incidents import pagerduty_signature

    payload = load_event("pagerduty_incident_triggered.json")
    raw = json.dumps(payload)
    header = f"v1={'0' * 64},{pagerduty_signature(PD_SECRET, raw.encode())}"
    result = hooked.call("POST", PD_HOOK, path_params=SP, raw_body=raw, headers={"x-pagerduty-signature": header})
    assert result.status == 201, result.body


def test_pagerduty_redelivery_changes_nothing(hooked: Api, store: Any) -> None:
    triggered = load_event("pagerduty_incident_triggered.json")
    assert pagerduty(hooked, triggered).status == 201
    resolved = load_event("pagerduty_incident_resolved.json")
    assert pagerduty(hooked, resolved).status == 200
    before = store.failures().get("Spaces-1", "pagerduty-Q0RIJJZL24RC6W")
    for payload in (resolved, triggered):
        again = pagerduty(hooked, payload)
        assert again.status == 200, again.body
        assert again.body["duplicate"] is True
    assert store.failures().get("Spaces-1", "pagerduty-Q0RIJJZL24RC6W") == before
    assert summary(hooked, store)["count"] == 1


def test_pagerduty_resolution_before_its_trigger_records_the_failure_resolved(hooked: Api, store: Any) -> None:
    resolved = pagerduty(hooked, load_event("pagerduty_incident_resolved.json"))
    assert resolved.status == 200, resolved.body
    assert resolved.body["failure"]["finished_at"] == "2024-02-28T10:30:00.000Z"
    late_trigger = pagerduty(hooked, load_event("pagerduty_incident_triggered.json"))
    assert late_trigger.status == 200
    assert late_trigger.body["status"] == "already_open"
    assert late_trigger.body["failure"]["finished_at"] == "2024-02-28T10:30:00.000Z"
    assert summary(hooked, store)["median_seconds"] == PD_RESTORE


def test_pagerduty_unmapped_service_is_ignored_with_a_202(hooked: Api, store: Any) -> None:
    payload = load_event("pagerduty_incident_triggered.json")
    payload["event"]["data"]["service"]["summary"] = "Search API"
    payload["event"]["data"]["service"]["id"] = "PSEARCH"
    result = pagerduty(hooked, payload)
    assert result.status == 202
    assert result.body["status"] == "unmapped"
    assert "Search API" in result.body["message"] and "not mapped" in result.body["message"]
    assert store.failures().get("Spaces-1", "pagerduty-Q0RIJJZL24RC6W") is None


def test_pagerduty_service_can_be_mapped_by_its_id(hooked: Api) -> None:
    assert configure(hooked, PD_CONFIG, {"services": {"PF9KMXH": {"project": "checkout"}}}).status == 200
    assert pagerduty(hooked, load_event("pagerduty_incident_triggered.json")).status == 201


def test_pagerduty_other_event_types_are_acknowledged_without_a_change(hooked: Api, store: Any) -> None:
    ping = {
        "event": {
            "id": "01BRB6ZP4M6T8ZG4X6BP63ZB9O",
            "event_type": "pagey.ping",
            "resource_type": "pagey",
            "occurred_at": "2024-02-28T09:00:00Z",
            "agent": None,
            "client": None,
            "data": {"message": "Hello"},
        }
    }
    assert pagerduty(hooked, ping).status == 202
    assert store.failures().get("Spaces-1", "pagerduty-Q0RIJJZL24RC6W") is None


def test_pagerduty_malformed_incident_is_a_400(hooked: Api) -> None:
    payload = load_event("pagerduty_incident_triggered.json")
    del payload["event"]["data"]["created_at"]
    result = pagerduty(hooked, payload)
    assert result.status == 400
    assert result.body["message"]
    not_json = hooked.call(
        "POST", PD_HOOK, path_params=SP, raw_body="[1,", headers={"x-pagerduty-signature": _sign("[1,")}
    )
    assert not_json.status == 400


def _sign(raw: str) -> str:
    from dora_insights.dialects.incidents import pagerduty_signature

    return pagerduty_signature(PD_SECRET, raw.encode())


# --- Opsgenie -------------------------------------------------------------------------------------
def test_opsgenie_alert_becomes_a_failure_with_time_to_restore(hooked: Api, store: Any) -> None:
    created = opsgenie(hooked, load_event("opsgenie_alert_create.json"))
    assert created.status == 201, created.body
    failure = created.body["failure"]
    assert failure["id"] == "opsgenie-052652ac-5d1c-464a-812a-7dd18bbfba8c"
    assert (failure["source"], failure["projects"], failure["environment"]) == ("opsgenie", ["payments"], "production")
    assert (failure["started_at"], failure["severity"]) == ("2024-02-29T08:00:00.000Z", "P2")

    acknowledged = opsgenie(hooked, load_event("opsgenie_alert_acknowledge.json"))
    assert (acknowledged.status, acknowledged.body["status"]) == (202, "ignored")

    closed = opsgenie(hooked, load_event("opsgenie_alert_close.json"))
    assert closed.status == 200, closed.body
    assert closed.body["failure"]["finished_at"] == "2024-02-29T08:45:00.447Z"
    restore = summary(hooked, store)
    assert (restore["count"], restore["median_seconds"]) == (1, OG_RESTORE)


def test_opsgenie_wrong_or_missing_secret_is_401(hooked: Api, store: Any) -> None:
    payload = load_event("opsgenie_alert_create.json")
    assert opsgenie(hooked, payload, secret="not-the-secret-0123456789").status == 401
    assert opsgenie(hooked, payload, secret=None).status == 401
    assert store.failures().get("Spaces-1", "opsgenie-052652ac-5d1c-464a-812a-7dd18bbfba8c") is None


def test_opsgenie_redelivery_changes_nothing(hooked: Api, store: Any) -> None:
    payload = load_event("opsgenie_alert_close.json")
    assert opsgenie(hooked, payload).status == 200
    before = store.failures().get("Spaces-1", "opsgenie-052652ac-5d1c-464a-812a-7dd18bbfba8c")
    again = opsgenie(hooked, payload)
    assert (again.status, again.body["duplicate"]) == (200, True)
    assert store.failures().get("Spaces-1", "opsgenie-052652ac-5d1c-464a-812a-7dd18bbfba8c") == before


def test_opsgenie_alert_without_a_mapped_service_is_ignored(hooked: Api, store: Any) -> None:
    payload = load_event("opsgenie_alert_create.json")
    payload["alert"]["entity"] = ""
    payload["alert"]["tags"] = ["service:ledger"]
    result = opsgenie(hooked, payload)
    assert (result.status, result.body["status"]) == (202, "unmapped")
    assert "ledger" in result.body["message"]
    assert store.failures().get("Spaces-1", "opsgenie-052652ac-5d1c-464a-812a-7dd18bbfba8c") is None


def test_opsgenie_service_tag_maps_when_the_entity_does_not(hooked: Api) -> None:
    payload = load_event("opsgenie_alert_create.json")
    payload["alert"]["entity"] = "host-42"
    payload["alert"]["tags"] = ["service:Payments API"]
    assert opsgenie(hooked, payload).status == 201


def test_incident_time_to_restore_is_in_the_dora_metrics_after_the_recompute(hooked: Api, store: Any) -> None:
    from dora_insights.logic import recompute

    # The DORA metrics count incidents of projects that deploy (a stream of checkout in production).
    deployment = {"project": "checkout", "environment": "production", "finished_at": "2024-02-20T10:00:00Z"}
    deployed = hooked.call("POST", "/api/{spaceId}/deployments", path_params=SP, body=deployment, key=ADMIN_KEY)
    assert deployed.status == 201, deployed.body
    assert pagerduty(hooked, load_event("pagerduty_incident_triggered.json")).status == 201
    assert pagerduty(hooked, load_event("pagerduty_incident_resolved.json")).status == 200
    recompute.run(store, NOW)
    query = {"metric": "time_to_restore_service", "start_date": "2024-02-27", "end_date": "2024-02-29"}
    result = hooked.call("GET", "/api/{spaceId}/dora/metrics", path_params=SP, query=query, key=ADMIN_KEY)
    assert result.status == 200, result.body
    assert [row["value"] for row in result.body] == [None, PD_RESTORE, None]


def test_incident_time_to_restore_is_in_a_reports_metrics_after_the_recompute(hooked: Api, store: Any) -> None:
    """Octopus Insights' TimeToRestore of a report counts the incident, as /summary does."""
    from dora_insights.logic import recompute

    deployment = {"project": "checkout", "environment": "production", "finished_at": "2024-02-20T10:00:00Z"}
    deployed = hooked.call("POST", "/api/{spaceId}/deployments", path_params=SP, body=deployment, key=ADMIN_KEY)
    assert deployed.status == 201, deployed.body
    created = hooked.call(
        "POST", "/api/{spaceId}/insights/reports", path_params=SP, body={"Name": "All"}, key=ADMIN_KEY
    )
    assert created.status == 201, created.body
    assert pagerduty(hooked, load_event("pagerduty_incident_triggered.json")).status == 201
    assert pagerduty(hooked, load_event("pagerduty_incident_resolved.json")).status == 200
    recompute.run(store, NOW)
    result = hooked.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={**SP, "reportId": created.body["Id"]},
        query={"timeRange": "LastMonth", "granularity": "Daily"},
        key=ADMIN_KEY,
    )
    assert result.status == 200, result.body
    (series,) = result.body["Series"]
    restored = [i["TimeToRestore"] for i in series["Intervals"] if i["TimeToRestore"]["Count"]]
    assert len(restored) == 1 and restored[0]["Count"] == 1, restored
    assert restored[0]["Median"] == "1:30:00.0"  # PD_RESTORE: the 90 minutes from trigger to resolve


def test_a_blank_service_name_is_a_400_not_a_server_error(api: Api) -> None:
    result = configure(api, OG_CONFIG, {"services": {"\u001f": {"project": "payments"}}})
    assert result.status == 400
    assert result.body["errors"]


def test_an_incident_with_the_longest_id_is_read_and_removed_by_its_failure_id(hooked: Api) -> None:
    """An alert id of 128 characters is stored as ``opsgenie-<id>``: the failure routes (native and Datadog)
    take every id the service stores, so such a failure can be read and removed (found by a review)."""
    payload = load_event("opsgenie_alert_create.json")
    payload["alert"]["alertId"] = "A" * 128
    created = opsgenie(hooked, payload)
    assert created.status == 201, created.body
    failure_id = created.body["failure"]["id"]
    assert failure_id == "opsgenie-" + "A" * 128
    one = {**SP, "failureId": failure_id}
    assert hooked.call("GET", "/api/{spaceId}/failures/{failureId}", path_params=one, key=ADMIN_KEY).status == 200
    datadog = hooked.call(
        "GET",
        "/api/v2/dora/failures/{failure_id}",
        path_params={"failure_id": failure_id},
        headers={"DD-API-KEY": ADMIN_KEY},
    )
    assert datadog.status == 200, datadog.body
    removed = hooked.call("DELETE", "/api/{spaceId}/failures/{failureId}", path_params=one, key=ADMIN_KEY)
    assert removed.status == 204, removed.body


def test_the_failure_id_bound_holds_every_incidents_failure_id() -> None:
    from dora_insights.dialects.incidents import ID_PATTERN
    from dora_insights.domain.incidents import IncidentSource, failure_id
    from dora_insights.handlers.params import MAX_FAILURE_ID

    assert "{1,128}" in ID_PATTERN
    assert max(len(failure_id(source, "A" * 128)) for source in IncidentSource) == MAX_FAILURE_ID
