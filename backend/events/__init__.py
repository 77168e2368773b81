"""Domain events: the envelope, the outbox, the relay, handlers with an inbox, dead letters."""
