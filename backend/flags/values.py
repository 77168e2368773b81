"""Parsers for constraint and strategy values, shared by validation and compilation.

Each returns None (or raises ValueError with a message fit for an API error) on bad input;
context values are parsed through small caches because the same few values (an app version,
a client address) recur across millions of evaluations."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from functools import lru_cache

import semver

from backend.flags.context import parse_time

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Sort key of a semantic version: (major, minor, patch, is_release, prerelease identifiers).
SemverKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]

# A decimal number as Unleash's engines read it: no whitespace, hex, underscores or inf/nan.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def number(text: str) -> float | None:
    if _NUMBER.fullmatch(text) is None:
        return None
    return float(text)


def date(text: str) -> datetime | None:
    try:
        return parse_time(text)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def context_date(text: str) -> datetime | None:
    return date(text)


def semver_key(text: str) -> SemverKey | None:
    """Precedence key per semver 2.0: build metadata ignored, a release above its
    prereleases, numeric identifiers numerically and below alphanumeric ones."""
    try:
        version = semver.Version.parse(text)
    except (ValueError, TypeError):
        return None
    if version.prerelease is None:
        return (version.major, version.minor, version.patch, 1, ())
    ids = tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in version.prerelease.split(".")
    )
    return (version.major, version.minor, version.patch, 0, ids)


@lru_cache(maxsize=4096)
def context_semver(text: str) -> SemverKey | None:
    return semver_key(text)


def ip_ranges(text: str) -> tuple[list[IPNetwork], list[str]]:
    """The networks of a comma-separated IPs parameter (addresses and CIDR ranges, IPv4 and
    IPv6), and the entries that are neither."""
    networks: list[IPNetwork] = []
    bad: list[str] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            bad.append(entry)
    return networks, bad


@lru_cache(maxsize=4096)
def context_ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; match them to IPv4 ranges.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def percentage(value: str | None) -> int | None:
    """A rollout percentage 0-100 (an integer, as Unleash stores it)."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        return None
    result = int(text)
    return result if result <= 100 else None
