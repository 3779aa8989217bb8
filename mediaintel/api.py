"""The REST API router (/api/v1/)."""

from rest_framework.routers import DefaultRouter

from apps.assets.views import AssetViewSet
from apps.audit.api import register as register_audit
from apps.moderation.api import register as register_moderation
from apps.pipeline.views import DeadLetterViewSet, JobViewSet
from apps.search.urls import urlpatterns as search_urls

router = DefaultRouter()
router.trailing_slash = "/?"  # both /assets/ and /assets/{id}/content work
router.register("assets", AssetViewSet, basename="asset")
router.register("jobs", JobViewSet, basename="job")
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")
register_moderation(router)
register_audit(router)

urlpatterns = [*router.urls, *search_urls]
