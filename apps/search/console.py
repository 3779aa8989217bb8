"""The console's search page: a query with filters, results with thumbnails; htmx swaps the results."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.exceptions import ValidationError

from apps.assets.models import Kind, ModerationState
from apps.core.models import is_uuid
from apps.core.roles import MODERATOR, has_role
from apps.search import query, services
from apps.search.filters import Filters
from apps.search.serializers import SearchQuerySerializer
from apps.search.views import query_data


def _errors(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [f"{k}: {', '.join(str(x) for x in (v if isinstance(v, list) else [v]))}" for k, v in detail.items()]
    return [str(detail)]


@login_required
def search_page(request: HttpRequest) -> HttpResponse:
    moderator = has_role(request.user, MODERATOR)
    ctx: dict[str, Any] = {"params": request.GET, "modes": services.MODES, "kinds": Kind.values,
                           "states": ModerationState.values, "sources": services.SOURCES, "moderator": moderator,
                           "body": None, "errors": [], "similar": None}
    similar_id = request.GET.get("similar", "").strip()
    if similar_id:
        asset = query.visible_assets(request.user).filter(pk=similar_id).first() if is_uuid(similar_id) else None
        if asset is None:
            ctx["errors"] = ["No such asset."]
        else:
            ctx["similar"] = asset
            ctx["similar_body"] = services.similar(services.query_from_asset(asset), mode="both",
                                                   filters=Filters(visible_to=None if moderator
                                                                            else request.user.pk), limit=20)
    elif request.GET.get("q", "").strip():
        data = query_data(request.GET)
        ser = SearchQuerySerializer(data={k: v for k, v in data.items() if v != "" or k == "q"})
        if not ser.is_valid():
            ctx["errors"] = _errors(ser.errors)
        else:
            try:
                filters = ser.filters(request.user, is_moderator=moderator)
            except ValidationError as e:  # unknown uploader
                ctx["errors"] = _errors(e.detail)
            else:
                if not moderator and filters.uploader_id not in (None, request.user.pk):
                    ctx["errors"] = ["Only moderators can search other uploaders' assets."]
                else:
                    d = ser.validated_data
                    ctx["body"] = services.search(services.SearchParams(
                        q=d["q"], mode=d["mode"], filters=filters, limit=d["limit"], offset=d["offset"],
                        moments=d["moments"]))
    template = "search/_results.html" if getattr(request, "htmx", False) else "search/search.html"
    return render(request, template, ctx)


