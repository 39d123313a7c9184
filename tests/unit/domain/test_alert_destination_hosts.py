"""A destination URL's host read as the resolver reads it (``normalised_host``), what a URL sends
(``target_of``) and which addresses are public (``public_address``): the rules ``check_url`` applies to them."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dora_insights.domain.alert_destinations import (
    DestinationKind,
    UrlNotAllowedError,
    check_url,
    normalised_host,
    public_address,
    target_of,
)

FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})  # "1" -> "１", "a" -> "ａ"
DOTS = ["\u3002", "\uff0e", "\uff61"]  # ideographic, full-width and half-width ideographic full stops

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True).filter(
    lambda label: not label.isdigit() and not label.startswith("0x")
)
names = st.lists(labels, min_size=2, max_size=4).map(".".join)


def spellings(address: ipaddress.IPv4Address) -> list[str]:
    """Every way ``inet_aton`` (and so the resolver) reads as ``address``."""
    number = int(address)
    octets = list(address.packed)
    return [
        str(address),
        ".".join(hex(o) for o in octets),
        ".".join(f"0{o:o}" for o in octets),
        f"{octets[0]}.{octets[1]}.{number & 0xFFFF}",
        f"{octets[0]}.{number & 0xFFFFFF}",
        str(number),
        hex(number),
        str(address).translate(FULL_WIDTH),
    ]


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("0.0", "0.0.0.0"),  # noqa: S104 (an address read, not bound)
        ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127.0.0.1"),
        ("localhost.", "localhost"),
        ("x.ec2.internal.", "x.ec2.internal"),
        ("ec2.\uff49\uff4e\uff54\uff45\uff52\uff4e\uff41\uff4c", "ec2.internal"),
        ("ec2\u3002internal", "ec2.internal"),
        ("B\u00fccher.example", "xn--bcher-kva.example"),
        ("::1", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("alerts.example.com", "alerts.example.com"),
    ],
)
def test_hosts_are_read_as_the_resolver_reads_them(host: str, normal: str) -> None:
    assert normalised_host(host) == normal


@pytest.mark.parametrize(
    "host",
    ["a..b", ".", "..", "a" * 64 + ".com", "999.1.1.1", "1.2.3.4.5", "example.08", "ex%41mple.com", "a b.com", "::g"],
)
def test_hosts_no_resolver_takes_as_given_are_refused(host: str) -> None:
    with pytest.raises(UrlNotAllowedError):
        normalised_host(host)


@given(address=st.ip_addresses(v=4))
def test_every_spelling_of_an_ipv4_address_is_that_address_and_is_judged_as_it(
    address: ipaddress.IPv4Address,
) -> None:
    for spelling in spellings(address):
        assert normalised_host(spelling) == str(address), spelling
        url = f"https://{spelling}/hook"
        if public_address(address):
            assert check_url(DestinationKind.WEBHOOK, url) == url
        else:
            with pytest.raises(UrlNotAllowedError):
                check_url(DestinationKind.WEBHOOK, url)


@given(address=st.ip_addresses(v=4))
def test_what_the_resolver_connects_to_is_what_the_host_normalises_to(address: ipaddress.IPv4Address) -> None:
    for spelling in spellings(address):
        resolved = socket.getaddrinfo(spelling, 443, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
        assert resolved == normalised_host(spelling), spelling


@given(name=names, dot=st.sampled_from(DOTS), full_width=st.booleans(), trailing=st.booleans())
def test_a_name_spelt_with_other_dots_full_width_letters_or_a_final_dot_is_the_same_name(
    name: str, dot: str, full_width: bool, trailing: bool
) -> None:
    spelling = (name.translate(FULL_WIDTH) if full_width else name).replace(".", dot) + ("." if trailing else "")
    assert normalised_host(spelling) == name


@given(name=names, suffix=st.sampled_from(["localhost", "local", "internal"]), trailing=st.booleans())
def test_reserved_names_are_refused_in_every_spelling(name: str, suffix: str, trailing: bool) -> None:
    for host in (f"{name}.{suffix}", f"{name}\u3002{suffix.translate(FULL_WIDTH)}", suffix.upper()):
        with pytest.raises(UrlNotAllowedError):
            check_url(DestinationKind.WEBHOOK, f"https://{host}{'.' if trailing else ''}/hook")


@given(
    position=st.integers(min_value=8, max_value=40),
    character=st.one_of(
        st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"]),
        st.sampled_from(["\x7f", "\x00", "\u200b", "\u00ad", "\u202e", "\ufeff"]),
    ),
)
def test_a_url_with_a_control_format_or_space_character_anywhere_is_refused(position: int, character: str) -> None:
    url = "https://alerts.example.com/hooks/dora?team=ops"
    with pytest.raises(UrlNotAllowedError):
        check_url(DestinationKind.WEBHOOK, url[:position] + character + url[position:])


@given(path=st.text(min_size=0, max_size=30).filter(lambda t: "#" not in t))
def test_an_accepted_url_always_has_a_printable_ascii_request_target(path: str) -> None:
    url = f"https://alerts.example.com/{path}"
    try:
        check_url(DestinationKind.WEBHOOK, url)
    except UrlNotAllowedError:
        return
    target = target_of(url).path
    assert target.isascii() and target.isprintable() and " " not in target
    assert target.startswith("/")


def test_a_request_target_percent_encodes_what_is_not_ascii_and_keeps_the_rest() -> None:
    target = target_of("https://Alerts.Example.com./h\u00fck/%41?team=Z\u00fcrich&x=%2F")

    assert (target.scheme, target.host, target.address, target.port) == ("https", "alerts.example.com", None, 443)
    assert target.path == "/h%C3%BCk/%41?team=Z%C3%BCrich&x=%2F"
    assert target_of("http://127.1:8080").path == "/"
    assert target_of("http://127.1:8080").address == ipaddress.IPv4Address("127.0.0.1")
    assert target_of("https://[::1]:9/x").host == "::1"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("224.0.0.1", False),  # multicast: Python's is_global says True
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("2002:a9fe:a9fe::", False),  # 6to4 of 169.254.169.254: is_global says True
        ("2002:808:808::", True),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1: is_global says True
        ("64:ff9b::808:808", True),
        ("100.64.0.1", False),
        ("fe80::1%eth0", False),
    ],
)
def test_public_addresses_are_global_unicast_whatever_they_wrap(address: str, public: bool) -> None:
    assert public_address(ipaddress.ip_address(address)) is public


def test_the_loopback_setting_admits_the_loopback_hosts_in_any_spelling_and_nothing_else() -> None:
    for url in ("http://127.1:8080/hook", "http://localhost.:1/x", "http://0x7f.0.0.1/x", "https://[0::1]:9/x"):
        assert check_url(DestinationKind.WEBHOOK, url, allow_loopback_http=True) == url
    for url in ("http://127.0.0.2/x", "http://10.1/x", "http://app.localhost/x", "http://[::ffff:127.0.0.1]/x"):
        with pytest.raises(UrlNotAllowedError):
            check_url(DestinationKind.WEBHOOK, url, allow_loopback_http=True)


def test_a_slack_url_is_judged_by_its_normalised_host() -> None:
    assert check_url(DestinationKind.SLACK, "https://hooks.slack.com./services/T/B/x")
    for url in ("https://hooks.slack.com:8443/services/T/B/x", "https://hooks.slack.com.evil.example/services/T"):
        with pytest.raises(UrlNotAllowedError):
            check_url(DestinationKind.SLACK, url)


@given(
    host=st.one_of(
        st.text(max_size=30),
        st.from_regex(r"[0-9a-fx.]{1,20}", fullmatch=True),
        st.from_regex(r"\[[0-9a-f:.%]{0,30}\]", fullmatch=True),
    ),
    rest=st.text(max_size=20),
)
def test_any_url_is_either_allowed_or_refused_with_the_reason_never_an_other_error(host: str, rest: str) -> None:
    url = f"https://{host}/{rest}"
    try:
        checked = check_url(DestinationKind.WEBHOOK, url)
    except UrlNotAllowedError:
        return
    target = target_of(checked)
    assert target.address is None or public_address(target.address)
    assert target.host.isascii() and not target.host.endswith(".")
