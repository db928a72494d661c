"""Where the closeout webhook may go, judged by the pure rules (models/webhook_target.py)."""

from __future__ import annotations

import ipaddress

import pytest

from models.webhook_target import address_refusal, url_refusal


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),  # a cloud's metadata service
        ("http://[fe80::1]/", "link-local"),
        ("http://127.0.0.1:8080/x", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4 inside IPv6
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
        ("http://localhost/", "loopback"),
        ("http://LocalHost./", "loopback"),
        ("http://api.localhost/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://10.0.0.5/", "private"),
        ("http://172.16.0.1/", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("http://[fd00::1]/", "private"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://100.64.0.1/", "non-public"),  # carrier-grade NAT
        ("http://127.1/", "shorthand"),
        ("http://2130706433/", "shorthand"),
        ("http://0x7f.0.0.1/", "shorthand"),
    ],
)
def test_non_public_targets_are_refused_by_kind(url: str, kind: str) -> None:
    reason = url_refusal(url)
    assert reason is not None and kind in reason, reason


@pytest.mark.parametrize(
    "url",
    [
        "https://portal.example.com/hooks/closeout",
        "https://93.184.215.14/hook",
        "https://[2606:4700:4700::1111]:8443/x",
        "http://hooks.example.net:8080/jobline",
    ],
)
def test_public_hosts_and_names_pass(url: str) -> None:
    assert url_refusal(url) is None


@pytest.mark.parametrize(
    "address", ["127.0.0.53", "10.1.2.3", "169.254.0.1", "::1", "::ffff:10.0.0.1", "0.0.0.0"]
)
def test_resolved_addresses_are_judged_alike(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is not None


def test_a_public_address_passes() -> None:
    assert address_refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert address_refusal(ipaddress.ip_address("2606:4700:4700::1111")) is None
