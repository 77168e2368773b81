"""The operator API: tenants (later plans, migrations status, dead letters)."""
