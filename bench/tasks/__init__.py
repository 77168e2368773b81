"""Benchmark of the tasks list and stats endpoints on a tenant with 100k tasks."""
