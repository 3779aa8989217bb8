"""Celery workers: task modules per queue, routing and pure model engines."""
