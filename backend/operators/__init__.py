"""Platform operators: accounts, API tokens, login and the operator principal."""
