"""Console pages for evaluation runs: the list, and each run's report and numbers."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from apps.core.roles import MODERATOR, has_role
from apps.pipeline.models import EvaluationRun

#: The stored report is self-contained (inline CSS and SVG, no script): it may load nothing, run nothing,
#: and is sandboxed, so even a hostile label in a dataset manifest could not act in the console's origin.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'none'"
COLUMNS = (("speech_wer", "speech WER"), ("ocr_cer", "OCR CER"), ("language_accuracy", "language"),
           ("cuts_f1", "cuts F1"), ("objects_map", "objects mAP"), ("tags_recall", "tags recall@k"),
           ("moderation_macro_f1", "moderation F1"))


def _moderator(request: HttpRequest) -> None:
    if not has_role(request.user, MODERATOR):
        raise PermissionDenied("Evaluation runs are for moderators and admins.")


@login_required
def runs(request: HttpRequest) -> HttpResponse:
    _moderator(request)
    page = Paginator(EvaluationRun.objects.defer("results", "report_html").select_related("compared_to"), 50
                     ).get_page(request.GET.get("page"))
    rows = [(r, [r.headline.get(key) for key, _ in COLUMNS]) for r in page.object_list]
    return render(request, "console/evaluations.html", {"page": page, "rows": rows,
                                                        "columns": [label for _, label in COLUMNS]})


@login_required
def report(request: HttpRequest, pk: str) -> HttpResponse:
    _moderator(request)
    run = get_object_or_404(EvaluationRun.objects.only("report_html"), pk=pk)
    resp = HttpResponse(run.report_html, content_type="text/html; charset=utf-8")
    resp["Content-Security-Policy"] = REPORT_CSP
    resp["X-Content-Type-Options"] = "nosniff"
    return resp


@login_required
def results(request: HttpRequest, pk: str) -> HttpResponse:
    _moderator(request)
    run = get_object_or_404(EvaluationRun.objects.only("results"), pk=pk)
    return JsonResponse(run.results, json_dumps_params={"indent": 1})
