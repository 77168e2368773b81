"""The live feed: a tenant's events over a WebSocket, from the relay's Redis pub/sub channel."""
