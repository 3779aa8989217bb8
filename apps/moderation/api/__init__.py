"""The moderation API: review queue, decisions, appeals, policies, taxonomy, hash banks, webhooks.

Roles (``apps.core.roles``): moderators work the review queue and decide appeals; admins write
policies, categories, banks and webhooks; uploaders see the decisions on
their own assets and appeal them — never review data or other uploaders' assets. Every write is an
audited action of ``apps.moderation.actions`` (which owns its transaction); its ``ModerationError``
becomes an API error with its status and code.
"""

from __future__ import annotations

from typing import Any

from apps.moderation.api.banks import HashBankEntryViewSet, HashBankViewSet
from apps.moderation.api.decisions import AppealViewSet, DecisionViewSet
from apps.moderation.api.policies import CategoryViewSet, PolicyViewSet
from apps.moderation.api.reviews import ReviewItemViewSet
from apps.moderation.api.webhooks import WebhookDeliveryViewSet, WebhookSubscriptionViewSet


def register(router: Any) -> None:
    """Mount the moderation API on the /api/v1/ router."""
    router.register("review-items", ReviewItemViewSet, basename="review-item")
    router.register("decisions", DecisionViewSet, basename="decision")
    router.register("appeals", AppealViewSet, basename="appeal")
    router.register("policies", PolicyViewSet, basename="policy")
    router.register("categories", CategoryViewSet, basename="category")
    router.register("hash-banks", HashBankViewSet, basename="hash-bank")
    router.register("hash-bank-entries", HashBankEntryViewSet, basename="hash-bank-entry")
    router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")
    router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
