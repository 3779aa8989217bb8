"""Console routes of the pipeline app (mounted under ``/console/evaluations/`` by ``apps.core.urls``)."""

from django.urls import path

from apps.pipeline import evaluation_console

urlpatterns = [
    path("", evaluation_console.runs, name="console-evaluations"),
    path("<uuid:pk>/report/", evaluation_console.report, name="console-evaluation-report"),
    path("<uuid:pk>/results.json", evaluation_console.results, name="console-evaluation-results"),
]
