"""Users, roles and login (fastapi-users inside)."""
