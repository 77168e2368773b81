"""Everything that knows tenants exist, and nothing about tasks."""
