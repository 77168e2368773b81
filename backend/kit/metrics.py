"""Prometheus metrics of the API process, served at ``GET /metrics``.

No tenant label: with thousands of tenants it would multiply every series; per-tenant figures
come from logs and the platform API.
"""

from __future__ import annotations

from prometheus_client import Counter

RATELIMIT_DECISIONS = Counter(
    "tenantflow_ratelimit_decisions_total",
    "Rate-limit decisions by policy: admitted, refused, or shadow_refused (a policy in shadow "
    "mode would have refused).",
    ["policy", "decision"],
)
RATELIMIT_REDIS_ERRORS = Counter(
    "tenantflow_ratelimit_redis_errors_total",
    "Requests whose limits could not be checked (Redis unavailable or slow), by what was done: "
    "open (admitted) or closed (refused with 503).",
    ["outcome"],
)
