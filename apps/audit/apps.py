from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Append-only, hash-chained audit trail."""

    name = "apps.audit"
    label = "audit"
