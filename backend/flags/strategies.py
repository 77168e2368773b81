"""Activation strategies compiled to closures, and Unleash's normalized hash."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable, Mapping
from functools import cache

import mmh3

from backend.flags import values
from backend.flags.context import Context, resolver

Check = Callable[[Context], bool]
STRATEGIES = frozenset(
    {
        "default",
        "userWithId",
        "gradualRolloutUserId",
        "gradualRolloutSessionId",
        "gradualRolloutRandom",
        "flexibleRollout",
        "remoteAddress",
        "applicationHostname",
    }
)


def normalized_hash(group_id: str, identifier: str, modulus: int = 100, seed: int = 0) -> int:
    """1..modulus from murmur3 x86 32 of "groupId:identifier" (Unleash's bucketing)."""
    return int(mmh3.hash(f"{group_id}:{identifier}", seed, signed=False)) % modulus + 1


def always(_: Context) -> bool:
    return True


def _roll(percent: int) -> bool:
    return random.randint(1, 100) <= percent  # noqa: S311 - a rollout sample, not a secret


@cache
def machine_hostname() -> str:
    return os.environ.get("HOSTNAME") or socket.gethostname()


def compile_parameters(name: str, params: Mapping[str, str], feature_name: str) -> Check:
    """The check of one strategy's own rule (constraints aside); ValueError for an unknown
    strategy or unusable parameters."""
    if name == "default":
        return always
    if name == "userWithId":
        ids = frozenset(_csv(params.get("userIds", "")))
        return lambda ctx: ctx.user_id in ids
    if name in ("gradualRolloutUserId", "gradualRolloutSessionId"):
        percent = _percent(params, "percentage")
        group = params.get("groupId", "")
        field = "user_id" if name == "gradualRolloutUserId" else "session_id"

        def sticky(ctx: Context) -> bool:
            value: str | None = getattr(ctx, field)
            return value is not None and normalized_hash(group, value) <= percent

        return sticky
    if name == "gradualRolloutRandom":
        percent = _percent(params, "percentage")
        return lambda _: _roll(percent)
    if name == "flexibleRollout":
        return _flexible(params, feature_name)
    if name == "remoteAddress":
        return _remote_address(params.get("IPs", ""))
    if name == "applicationHostname":
        hosts = frozenset(h.lower() for h in _csv(params.get("hostNames", "")))
        machine = machine_hostname().lower()

        def on_host(ctx: Context) -> bool:
            host = ctx.properties.get("hostname")
            return (host.lower() if host is not None else machine) in hosts

        return on_host
    known = ", ".join(sorted(STRATEGIES))
    raise ValueError(f"unknown strategy {name!r}; expected one of {known}")


def _flexible(params: Mapping[str, str], feature_name: str) -> Check:
    percent = _percent(params, "rollout")
    group = params.get("groupId") or feature_name
    stickiness = params.get("stickiness") or "default"
    if stickiness == "random":
        return lambda _: _roll(percent)
    if stickiness == "default":

        def default(ctx: Context) -> bool:
            value = ctx.user_id if ctx.user_id is not None else ctx.session_id
            if value is None:
                return _roll(percent)
            return normalized_hash(group, value) <= percent

        return default
    get = resolver(stickiness)  # userId, sessionId, tenantId or any context field

    def sticky(ctx: Context) -> bool:
        value = get(ctx)
        return value is not None and normalized_hash(group, value) <= percent

    return sticky


def _remote_address(ips: str) -> Check:
    networks, bad = values.ip_ranges(ips)
    if bad:
        raise ValueError(f"IPs: not an IP address or CIDR range: {', '.join(bad)}")
    v4 = tuple(n for n in networks if n.version == 4)
    v6 = tuple(n for n in networks if n.version == 6)

    def check(ctx: Context) -> bool:
        if ctx.remote_address is None:
            return False
        address = values.context_ip(ctx.remote_address)
        if address is None:
            return False
        return any(address in n for n in (v4 if address.version == 4 else v6))

    return check


def compile_parameters_lenient(name: str, params: Mapping[str, str], feature_name: str) -> Check:
    """Like `compile_parameters`, but off instead of an error; bad IPs in a remoteAddress
    list are skipped rather than turning the strategy off, as Unleash SDKs do."""
    if name == "remoteAddress":
        networks, _ = values.ip_ranges(params.get("IPs", ""))
        return _remote_address(",".join(str(n) for n in networks))
    try:
        return compile_parameters(name, params, feature_name)
    except ValueError:
        return lambda _: False


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _percent(params: Mapping[str, str], key: str) -> int:
    percent = values.percentage(params.get(key))
    if percent is None:
        raise ValueError(f"parameter {key!r} must be an integer 0-100, not {params.get(key)!r}")
    return percent
