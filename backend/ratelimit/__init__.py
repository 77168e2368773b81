"""Per-tenant rate limits: plans, overrides, one atomic Redis script per request, headers."""
