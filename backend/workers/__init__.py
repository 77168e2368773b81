"""Celery: the app, queue routing by tenant partition, the beat schedule."""
