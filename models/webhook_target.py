"""Where the closeout webhook may be sent: public internet addresses only, unless the operator
allows private networks (`JOBLINE_WEBHOOK_ALLOW_PRIVATE`).

The URL is set by an admin but fetched by the worker, from inside the company's network: a URL
naming a loopback, private or link-local address (a cloud's metadata service at 169.254.169.254)
would make the worker reach what no one outside can. The URL is checked as written when it is
saved (`url_refusal`), and every address its host resolves to is checked again just before each
delivery (`address_refusal`), since DNS can say anything later.

Pure: the stdlib `ipaddress` only, no lookups.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_SETTING = "JOBLINE_WEBHOOK_ALLOW_PRIVATE=true"
# Shorthand IPv4 that resolvers still accept (127.1, 2130706433, 0x7f.0.0.1): refused as written,
# since what it means depends on the resolver.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.I)


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook must not be sent to this address, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return address_refusal(embedded)
    for kind, matches in (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a private", address.is_private),
        ("a reserved", address.is_reserved),
        ("a non-public", not address.is_global),  # shared (100.64/10), documentation, …
    ):
        if matches:
            return f"{address} is {kind} address"
    return None


def url_refusal(url: str) -> str | None:
    """Why a webhook URL must not be saved, judged by its host as written, or None."""
    host = (urlsplit(url).hostname or "").lower()
    name = host.removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):  # loopback by definition (RFC 6761)
        return f"{host} is a loopback name"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if _NUMERIC_HOST.match(host):
            return f"{host} is an IP address in shorthand; write it in full"
        return None  # a name: its addresses are checked when the webhook is sent
    return address_refusal(address)


def explain(reason: str) -> str:
    return (
        f"{reason}; webhooks go to public internet addresses only (an operator may allow "
        f"private networks with {ALLOW_SETTING})"
    )
