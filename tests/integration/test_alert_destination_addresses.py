"""Alert destinations never make the service call an address outside the public internet (API.md "Alert
destinations", URL rules), through the real handlers against moto.

A URL's host is judged as the resolver reads it (IPv4 literals in every form ``inet_aton`` takes, IDNA's
mapping of full-width letters, digits and dots, the trailing dot of a fully qualified name), and a name is
called only when every address it resolves to is public, at the address that was checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import ADMIN_KEY, Api
from tests.support.raw_server import RawServer
from tests.support.receiver import Receiver

SP = {"spaceId": "Spaces-1"}
BASE = "/api/{spaceId}/alert-destinations"
ONE = BASE + "/{destinationId}"


class Listener(RawServer):
    """Records every connection it accepts and its first bytes (it never speaks TLS)."""

    def __init__(self) -> None:
        self.connections = 0
        self.first_bytes: list[bytes] = []
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        self.connections += 1
        conn.settimeout(1.0)
        self.first_bytes.append(conn.recv(64))


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    try:
        yield found
    finally:
        found.close()


def resolving(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    """``socket.getaddrinfo`` answers ``names`` with their addresses (an attacker's DNS zone); other hosts as
    before."""
    real = socket.getaddrinfo

    def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            return [answer for address in names[host] for answer in real(address, port, *args, **kwargs)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)


def _create(api: Api, url: str, kind: str = "webhook") -> Any:
    return api.call("POST", BASE, path_params=SP, body={"name": "x", "kind": kind, "url": url}, key=ADMIN_KEY)


def _test_send(api: Api, destination_id: str) -> Any:
    return api.call("POST", ONE + "/test", path_params={**SP, "destinationId": destination_id}, key=ADMIN_KEY)


# --------------------------------------------------------------------------------------------- at creation
@pytest.mark.parametrize(
    "url",
    [
        "https://127.1/hook",  # 127.0.0.1 in inet_aton's short form
        "https://0x7f.0.0.1/hook",  # 127.0.0.1, hexadecimal octet
        "https://169.254.43518/latest/meta-data",  # 169.254.169.254, a.b.c form
        "https://0251.0376.0251.0376/latest/meta-data",  # 169.254.169.254, octal octets
        "https://10.1/hook",  # 10.0.0.1
        "https://0.0/hook",  # 0.0.0.0: this host
        "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/hook",  # full-width digits: IDNA makes them 127.0.0.1
    ],
)
def test_ip_literals_in_non_canonical_form_are_refused(api: Api, url: str) -> None:
    """No host that is an IP address outside the public internet: every one of these hosts is such an address
    to the resolver the sender uses (getaddrinfo / inet_aton, IDNA)."""
    resolved = socket.getaddrinfo(urlsplit(url).hostname, 443, proto=socket.IPPROTO_TCP)[0][4][0]
    assert not ipaddress.ip_address(resolved).is_global  # what the sender would connect to

    refused = _create(api, url)

    assert refused.status == 400, (url, resolved, refused.status, refused.body)
    assert refused.body["errors"][0].startswith("url"), refused.body


@pytest.mark.parametrize(
    "host",
    [
        "localhost.",  # the same name as localhost (a fully qualified name ends with a dot)
        "app.localhost.",
        "printer.local.",
        "ip-10-0-0-1.ec2.internal.",  # resolves to 10.0.0.1 inside an AWS VPC
        "ip-10-0-0-1.ec2.\uff49\uff4e\uff54\uff45\uff52\uff4e\uff41\uff4c",  # full-width "internal": IDNA maps it
        "ip-10-0-0-1.ec2\u3002internal",  # ideographic full stop: IDNA maps it to "."
        "LOCALHOST",
        "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",  # full-width "localhost"
    ],
)
def test_reserved_names_in_another_spelling_are_refused(api: Api, host: str) -> None:
    """No `localhost`, `*.localhost`, `*.local`, `*.internal`: the resolver sees each of these hosts as one of
    those names (trailing dot of a fully qualified name; IDNA's mapping of full-width letters and dots)."""
    refused = _create(api, f"https://{host}/hook")

    assert refused.status == 400, (host, host.encode("idna"), refused.status, refused.body)
    assert refused.body["errors"][0].startswith("url"), refused.body


@pytest.mark.parametrize(
    "url",
    [
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "https://[::ffff:a9fe:a9fe]/latest/meta-data",  # IPv4-mapped 169.254.169.254
        "https://[2002:a9fe:a9fe::]/latest/meta-data",  # 6to4 of 169.254.169.254
        "https://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
        "https://[fe80::1%25eth0]/hook",  # link-local with a zone
        "https://224.0.0.1/hook",  # multicast
        "https://999.1.1.1/hook",  # ends in a number yet no address: never a name to resolve
        "https://alerts.example.0x10/hook",
    ],
)
def test_addresses_hidden_in_ipv6_forms_multicast_and_numeric_hosts_are_refused(api: Api, url: str) -> None:
    refused = _create(api, url)

    assert refused.status == 400, (url, refused.status, refused.body)
    assert refused.body["errors"][0].startswith("url"), refused.body


@pytest.mark.parametrize(
    "url",
    [
        "https://alerts.example.com/ho\x7fok",  # DEL
        "https://alerts.example.com/hook\x85",  # a C1 control (NEL)
        "https://alerts.example.com/hook\u200b",  # zero-width space (a format character)
        "https://alerts.exam\u00adple.com/hook",  # soft hyphen: IDNA drops it from the host
        "https://alerts.example.com/hook?\u202eevil",  # right-to-left override
        "https://alerts.example.com/\x00",
    ],
)
def test_urls_with_control_or_format_characters_are_refused(api: Api, url: str) -> None:
    refused = _create(api, url)

    assert refused.status == 400, (url, refused.status, refused.body)
    assert refused.body["errors"][0].startswith("url"), refused.body


# --------------------------------------------------------------------------------------------- at sending
def test_a_short_form_loopback_url_never_makes_the_service_connect_to_loopback(api: Api, listener: Listener) -> None:
    """Without the local runtime's loopback setting (a deployment), a test-send to a port on 127.0.0.1 would
    tell open ports from closed ones in the delivery log: an internal port scanner for any alert:write key."""
    made = _create(api, f"https://127.1:{listener.port}/hook")
    closed = _create(api, "https://127.1:9/hook")  # the discard port: nothing listens
    answers = {}
    for name, created in (("open", made), ("closed", closed)):
        if created.status == 201:
            answers[name] = _test_send(api, created.body["id"]).body["error"]

    assert (made.status, closed.status, listener.connections) == (400, 400, 0), (
        made.status,
        listener.connections,
        listener.first_bytes[:1],
        answers,
    )


def test_a_name_that_resolves_to_loopback_is_not_called(
    api: Api, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public-looking name whose DNS answer is an internal address (an attacker's zone, DNS rebinding):
    the sender checks the addresses the name resolves to and calls none of them."""
    made = _create(api, f"https://alerts.attacker.example:{listener.port}/hook")
    assert made.status == 201, made.body
    resolving(monkeypatch, {"alerts.attacker.example": ["127.0.0.1"]})

    sent = _test_send(api, made.body["id"])

    assert sent.status == 200, sent.body
    assert listener.connections == 0, ("the service connected to 127.0.0.1", sent.body)
    assert sent.body["status"] == "failed" and sent.body["status_code"] is None, sent.body
    assert "outside the public internet" in sent.body["error"], sent.body
    assert "127.0.0.1" not in sent.body["error"]  # the log never tells what an internal name resolves to


def test_a_name_with_one_private_address_among_public_ones_is_not_called(
    api: Api, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _create(api, f"https://alerts.attacker.example:{listener.port}/hook")
    assert made.status == 201, made.body
    resolving(monkeypatch, {"alerts.attacker.example": ["8.8.8.8", "10.0.0.1", "127.0.0.1"]})

    sent = _test_send(api, made.body["id"])

    assert (sent.body["status"], listener.connections) == ("failed", 0), sent.body
    assert "outside the public internet" in sent.body["error"], sent.body


def test_the_local_loopback_setting_admits_loopback_addresses_only(
    api: Api, loopback: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``ALERT_ALLOW_LOOPBACK_HTTP`` a receiver on 127.0.0.1 gets alerts; a name resolving to a private
    address still is not called."""
    port = urlsplit(receiver.url).port
    to_private = _create(api, f"https://private.attacker.example:{port}/hook")
    to_loopback = _create(api, f"{receiver.url}/hook")
    assert (to_private.status, to_loopback.status) == (201, 201)
    resolving(monkeypatch, {"private.attacker.example": ["10.0.0.1"]})

    refused = _test_send(api, to_private.body["id"])
    delivered = _test_send(api, to_loopback.body["id"])

    assert refused.body["status"] == "failed" and "outside the public internet" in refused.body["error"]
    assert delivered.body["status"] == "delivered", delivered.body
    assert len(receiver.at("/hook")) == 1


def test_a_url_with_non_ascii_in_its_path_and_query_is_sent_percent_encoded(
    api: Api, loopback: None, receiver: Receiver
) -> None:
    """A URL accepted at creation can be sent: what is not ASCII in its path and query goes as UTF-8,
    percent-encoded (as a browser sends it); what was percent-encoded already is sent as given."""
    made = _create(api, f"{receiver.url}/h\u00fck/%41?team=Z\u00fcrich&x=%2F")
    assert made.status == 201, made.body

    sent = _test_send(api, made.body["id"])

    assert sent.body["status"] == "delivered", sent.body
    assert [r.path for r in receiver.requests] == ["/h%C3%BCk/%41?team=Z%C3%BCrich&x=%2F"]


def test_the_host_header_and_the_request_name_the_host_as_configured(
    api: Api, loopback: None, receiver: Receiver
) -> None:
    port = urlsplit(receiver.url).port
    made = _create(api, f"http://localhost.:{port}/hook")  # the loopback name, fully qualified
    assert made.status == 201, made.body

    sent = _test_send(api, made.body["id"])

    assert sent.body["status"] == "delivered", sent.body
    assert receiver.at("/hook")[0].headers["host"] == f"localhost:{port}"
