"""The REST API router (/api/v1/)."""

from rest_framework.routers import DefaultRouter

from apps.assets.views import AssetViewSet
from apps.pipeline.views import DeadLetterViewSet, JobViewSet

router = DefaultRouter()
router.trailing_slash = "/?"  # both /assets/ and /assets/{id}/content work
router.register("assets", AssetViewSet, basename="asset")
router.register("jobs", JobViewSet, basename="job")
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")

urlpatterns = router.urls
