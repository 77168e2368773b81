"""Projects: the first tenant resource."""
