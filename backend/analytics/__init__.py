"""Project and tenant statistics, cached in Redis under the tenant's keys."""
