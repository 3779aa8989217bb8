"""Console routes of the pipeline app: jobs, dead letters and recorded evaluation runs (mounted
under ``/console/`` by ``mediaintel.urls``)."""

from django.urls import path

from apps.pipeline import console, evaluation_console

urlpatterns = [
    path("jobs/", console.jobs, name="console-jobs"),
    path("dead-letters/", console.dead_letters, name="console-dlq"),
    path("dead-letters/<int:pk>/<str:action>/", console.dead_letter_action, name="console-dlq-action"),
    path("evaluations/", evaluation_console.runs, name="console-evaluations"),
    path("evaluations/<uuid:pk>/report/", evaluation_console.report, name="console-evaluation-report"),
    path("evaluations/<uuid:pk>/results.json", evaluation_console.results, name="console-evaluation-results"),
]
