from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Domain events: the transactional outbox and its relay to the bus (see docs/architecture.md)."""

    name = "apps.events"
    label = "events"
