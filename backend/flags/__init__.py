"""Feature flags: a pure evaluation engine with Unleash semantics (no storage, no I/O)."""
