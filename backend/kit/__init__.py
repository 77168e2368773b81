"""Small shared building blocks: db base, errors, pagination."""
