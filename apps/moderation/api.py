"""The moderation API: review queue, decisions, appeals, policies, taxonomy, hash banks, webhooks, audit.

Roles (``apps.core.roles``): moderators work the review queue and decide appeals; admins write
policies, categories, banks and webhooks and read the audit trail; uploaders see the decisions on
their own assets and appeal them — never review data or other uploaders' assets. Every write goes
through ``apps.moderation.services`` (or ``banks`` / ``policy_io`` / ``webhooks``), which audit it;
their ``ModerationError`` becomes an API error with its status and code.
"""

from __future__ import annotations

import codecs
from typing import Any

import django_filters as df
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser, FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.assets.models import MediaAsset
from apps.audit.models import AuditEvent
from apps.audit.services import Actor, record, verify
from apps.core.errors import ApiError
from apps.core.filters import TimestampFilter
from apps.core.negotiation import JsonErrors, KnownFormatNegotiation, TextRenderer
from apps.core.pagination import LimitOffsetPagination
from apps.core.roles import MODERATOR, IsAdmin, IsModerator, has_role
from apps.moderation import banks, policy_io, services, webhooks
from apps.moderation import serializers as s
from apps.moderation.models import (
    Appeal,
    Category,
    Decision,
    HashBank,
    HashBankEntry,
    Policy,
    PolicyVersion,
    ReviewItem,
    ReviewState,
    WebhookDelivery,
    WebhookSubscription,
)
from apps.moderation.services import PENDING, ModerationError

UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


# ------------------------------------------------------------------ plumbing
class _TextParser(BaseParser):
    """A raw text body (YAML, CSV) handed to the view as ``str``."""

    media_type = "text/plain"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> str:
        charset = "utf-8"
        if media_type and "charset=" in media_type:
            charset = media_type.split("charset=", 1)[1].split(";")[0].strip()
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
        return stream.read().decode(charset, "replace") if stream is not None else ""


class CsvRenderer(TextRenderer):
    media_type = "text/csv"
    format = "csv"


class YamlParser(_TextParser):
    media_type = "application/yaml"


class XYamlParser(_TextParser):
    media_type = "application/x-yaml"


class TextYamlParser(_TextParser):
    media_type = "text/yaml"


class CsvParser(_TextParser):
    media_type = "text/csv"


class ServiceErrors:
    """Turn ``ModerationError`` from the services into the API's error format."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ModerationError):
            exc = ApiError(str(exc), code=exc.code, status_code=exc.status)
        return super().handle_exception(exc)  # type: ignore[misc]


def _fake(view: Any) -> bool:
    return getattr(view, "swagger_fake_view", False)


def _is_moderator(request: Request) -> bool:
    return has_role(request.user, MODERATOR)


def _valid(serializer_class: type, data: Any, **kw: Any) -> dict[str, Any]:
    ser = serializer_class(data=data, **kw)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


# ------------------------------------------------------------------ review items
class ReviewItemFilter(df.FilterSet):
    state = df.MultipleChoiceFilter(choices=ReviewState.choices,
                                    help_text="Repeatable; default: the pending states (open, claimed, escalated)")
    category = df.CharFilter(method="filter_category", help_text="A taxonomy code the item is flagged for")
    mine = df.BooleanFilter(method="filter_mine", help_text="Only items I have claimed")

    class Meta:
        model = ReviewItem
        fields = ["state", "category", "asset", "mine"]

    def filter_category(self, qs: QuerySet[ReviewItem], name: str, value: str) -> QuerySet[ReviewItem]:
        return qs.filter(categories__contains=[value]) if value else qs

    def filter_mine(self, qs: QuerySet[ReviewItem], name: str, value: bool | None) -> QuerySet[ReviewItem]:
        if value is None:
            return qs
        mine = Q(state=ReviewState.CLAIMED, claimed_by=self.request.user)
        return qs.filter(mine) if value else qs.exclude(mine)


class CountsPagination(LimitOffsetPagination):
    """Limit/offset pages plus ``counts`` (items per state, pending items per category)."""

    counts: dict[str, Any] | None = None

    def get_paginated_response(self, data: Any) -> Response:
        resp = super().get_paginated_response(data)
        resp.data["counts"] = self.counts or {"by_state": {}, "by_category": {}}
        return resp

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        out = super().get_paginated_response_schema(schema)
        counts = {"type": "object", "additionalProperties": {"type": "integer"}}
        out["properties"]["counts"] = {"type": "object",
                                       "properties": {"by_state": counts, "by_category": counts}}
        return out


class ReviewItemViewSet(ServiceErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The human review queue (moderators): most severe first; claim, release, decide."""

    permission_classes = [IsModerator]
    serializer_class = s.ReviewItemSerializer
    filterset_class = ReviewItemFilter
    pagination_class = CountsPagination
    queryset = ReviewItem.objects.none()

    def get_queryset(self) -> QuerySet[ReviewItem]:
        if _fake(self):
            return ReviewItem.objects.none()
        return ReviewItem.objects.select_related("asset", "claimed_by", "policy_version__policy")

    def get_serializer_class(self) -> type:
        return s.ReviewItemDetailSerializer if self.action != "list" else s.ReviewItemSerializer

    def _counts(self) -> dict[str, Any]:
        base = ReviewItem.objects.all()
        if category := self.request.query_params.get("category"):
            base = base.filter(categories__contains=[category])
        by_state = {st: 0 for st in ReviewState.values}
        by_state.update({r["state"]: r["n"] for r in base.values("state").annotate(n=Count("id"))})
        with connection.cursor() as cur:
            cur.execute("SELECT c, count(*) FROM moderation_reviewitem, jsonb_array_elements_text(categories) c "
                        "WHERE state = ANY(%s) GROUP BY c ORDER BY c", [list(PENDING)])
            by_category = {c: n for c, n in cur.fetchall()}
        return {"by_state": by_state, "by_category": by_category}

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Review items (default: pending), with counts per state and pending counts per category."""
        qs = self.filter_queryset(self.get_queryset())
        if not request.query_params.getlist("state"):
            qs = qs.filter(state__in=PENDING)
        page = self.paginate_queryset(qs)
        self.paginator.counts = self._counts()
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=None, responses={200: s.ReviewItemDetailSerializer,
                                            409: OpenApiResponse(description="Claimed by another moderator")})
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, pk: str | None = None) -> Response:
        """Claim the item for yourself (for ``MEDIAINTEL_REVIEW_CLAIM_TTL`` seconds); exactly one moderator wins."""
        self.get_object()
        item = services.claim(pk, request.user)
        return Response(s.ReviewItemDetailSerializer(self.get_queryset().get(pk=item.pk)).data)

    @extend_schema(request=None, responses={200: s.ReviewItemSerializer,
                                            409: OpenApiResponse(description="You do not hold the item")})
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        """Give a claimed item back to the queue."""
        item = self.get_object()
        services.release(item.pk, request.user)
        return Response(s.ReviewItemSerializer(self.get_queryset().get(pk=item.pk)).data)

    @extend_schema(request=s.DecideSerializer, responses={201: s.DecisionSerializer,
                                                          409: OpenApiResponse(description="Not claimed by you")})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """Approve, reject (with reason codes) or escalate the item you hold; writes the decision."""
        item = self.get_object()
        data = _valid(s.DecideSerializer, request.data)
        d = services.decide(item.pk, request.user, data["outcome"], reason_codes=data["reason_codes"],
                            note=data["note"])
        return Response(s.DecisionSerializer(d, context={"moderator_view": True}).data,
                        status=status.HTTP_201_CREATED)


# ------------------------------------------------------------------ decisions and appeals
class DecisionViewSet(JsonErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Decisions with their statement of reasons. Uploaders see the decisions on their own assets."""

    serializer_class = s.DecisionSerializer
    filterset_fields = ["asset", "outcome", "automated_decision"]
    queryset = Decision.objects.none()

    def get_queryset(self) -> QuerySet[Decision]:
        if _fake(self):
            return Decision.objects.none()
        qs = Decision.objects.select_related("moderator", "policy_version__policy").prefetch_related("appeals")
        if not _is_moderator(self.request):
            qs = qs.filter(asset__uploader=self.request.user)
        return qs

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "moderator_view": not _fake(self) and _is_moderator(self.request)}

    @extend_schema(
        parameters=[OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="first day (UTC), included"),
                    OpenApiParameter("to", OpenApiTypes.DATE, required=True, description="last day (UTC), included"),
                    OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"],
                                     description="Or a `.csv`/`.json` suffix, or the Accept header."),
                    OpenApiParameter("territory", OpenApiTypes.STR,
                                     description="comma-separated EU/EEA codes for territorial_scope (default all)")],
        responses={(200, "application/json"): OpenApiTypes.OBJECT,
                   (200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"], url_path="statements-of-reasons", permission_classes=[IsModerator],
            renderer_classes=[JSONRenderer, CsvRenderer], content_negotiation_class=KnownFormatNegotiation,
            pagination_class=None, filter_backends=[])
    def statements_of_reasons(self, request: Request, format: str | None = None) -> Response:
        """Statements of reasons of the restricting decisions in a range of days, in the layout of the EU DSA
        Transparency Database (JSON: the body of its bulk endpoint; CSV: one column per field). Moderators."""
        from apps.moderation import dsa, sor_export

        missing = [p for p in ("from", "to") if not request.query_params.get(p)]
        if missing:
            raise ApiError(f"Missing parameter(s): {', '.join(missing)} (YYYY-MM-DD).", code="invalid",
                           detail={p: ["required"] for p in missing})
        try:
            start = dsa.parse_day(request.query_params["from"], "from")
            end = dsa.parse_day(request.query_params["to"], "to")
            territory = request.query_params.get("territory", ",".join(dsa.EEA_COUNTRIES)).split(",")
            statements = sor_export.statements_between(start, end, territorial_scope=territory)
        except ValueError as e:
            raise ApiError(str(e), code="invalid") from None
        fmt = request.accepted_renderer.format
        resp = Response(dsa.to_csv(statements) if fmt == "csv" else {"statements": statements})
        resp["Content-Disposition"] = f'attachment; filename="statements-of-reasons-{start}-{end}.{fmt}"'
        return resp


class AppealFilter(df.FilterSet):
    class Meta:
        model = Appeal
        fields = ["state", "decision"]


class AppealViewSet(ServiceErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    viewsets.GenericViewSet):
    """Appeals: the uploader contests a decision on their asset; a different moderator decides."""

    serializer_class = s.AppealSerializer
    filterset_class = AppealFilter
    queryset = Appeal.objects.none()

    def get_queryset(self) -> QuerySet[Appeal]:
        if _fake(self):
            return Appeal.objects.none()
        qs = Appeal.objects.select_related("decision", "appellant", "decided_by")
        if not _is_moderator(self.request):
            qs = qs.filter(appellant=self.request.user)
        return qs

    def get_permissions(self) -> list[Any]:
        perms = super().get_permissions()
        if self.action == "decide":
            perms.append(IsModerator())
        return perms

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "moderator_view": not _fake(self) and _is_moderator(self.request)}

    @extend_schema(request=s.AppealCreateSerializer, responses={201: s.AppealSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Appeal a decision on your own asset, saying why it is wrong."""
        data = _valid(s.AppealCreateSerializer, request.data)
        decisions = Decision.objects.select_related("asset")
        if not _is_moderator(request):
            decisions = decisions.filter(asset__uploader=request.user)
        decision = decisions.filter(pk=data["decision"]).first()
        if decision is None:
            raise ApiError("No such decision.", code="not_found", status_code=404)
        appeal = services.open_appeal(decision, request.user, data["reason"])
        return Response(self.get_serializer(appeal).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.AppealDecideSerializer, responses={200: s.AppealSerializer,
                                                                403: OpenApiResponse(description="Same moderator")})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """Uphold or overturn (a new decision with the opposite outcome); not by the moderator who decided."""
        appeal = self.get_object()
        data = _valid(s.AppealDecideSerializer, request.data)
        appeal = services.decide_appeal(appeal.pk, request.user, upheld=data["upheld"], note=data["note"])
        return Response(self.get_serializer(appeal).data)


# ------------------------------------------------------------------ policies and taxonomy
class PolicyViewSet(ServiceErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Versioned policies (moderators read; admins write new versions, as JSON or YAML)."""

    serializer_class = s.PolicySerializer
    lookup_field = "name"
    lookup_value_regex = r"[\w.@-]+"
    pagination_class = None
    queryset = Policy.objects.none()

    def get_queryset(self) -> QuerySet[Policy]:
        if _fake(self):
            return Policy.objects.none()
        return Policy.objects.select_related("active_version__policy", "active_version__created_by").order_by("name")

    def get_permissions(self) -> list[Any]:
        if self.action == "import_yaml" or (self.action == "versions" and self.request.method == "POST"):
            return [IsAdmin()]
        return [IsModerator()]

    @extend_schema(methods=["GET"], responses=s.PolicyVersionSerializer(many=True))
    @extend_schema(methods=["POST"], request=s.PolicyVersionCreateSerializer,
                   responses={201: s.PolicyVersionSerializer})
    @action(detail=True, methods=["get", "post"])
    def versions(self, request: Request, name: str | None = None) -> Response:
        """GET: every version, newest first. POST (admin): rules as JSON become the next, active version."""
        policy = self.get_object()
        if request.method == "POST":
            data = _valid(s.PolicyVersionCreateSerializer, request.data)
            v = services.new_policy_version(data["rules"], user=request.user, note=data["note"], name=policy.name)
            return Response(s.PolicyVersionSerializer(v).data, status=status.HTTP_201_CREATED)
        qs = PolicyVersion.objects.filter(policy=policy).select_related("policy", "created_by").order_by("-number")
        return Response(s.PolicyVersionSerializer(qs, many=True).data)

    @extend_schema(parameters=[OpenApiParameter("version", OpenApiTypes.INT, description="default: the active one")],
                   responses={(200, "application/yaml"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, name: str | None = None) -> HttpResponse:
        """The policy (active or ``?version=N``) as a YAML document."""
        policy = self.get_object()
        number = request.query_params.get("version")
        if number:
            if not number.isdigit():
                raise ApiError("version must be a number", code="invalid")
            v = get_object_or_404(PolicyVersion.objects.select_related("policy"), policy=policy, number=int(number))
        else:
            v = policy_io.active_version(policy.name)
        resp = HttpResponse(policy_io.export_yaml(v), content_type="application/yaml; charset=utf-8")
        resp["Content-Disposition"] = f'attachment; filename="policy-{policy.name}-v{v.number}.yaml"'
        return resp

    @extend_schema(request={"application/yaml": OpenApiTypes.STR, "application/json": s.PolicyImportSerializer},
                   parameters=[OpenApiParameter("name", OpenApiTypes.STR, description="policy name (default: the "
                                                "document's `policy:`, else `default`)"),
                               OpenApiParameter("note", OpenApiTypes.STR)],
                   responses={201: s.PolicyImportResultSerializer,
                              200: OpenApiResponse(s.PolicyImportResultSerializer, description="Unchanged")})
    @action(detail=False, methods=["post"], url_path="import",
            parser_classes=[YamlParser, XYamlParser, TextYamlParser, JSONParser])
    def import_yaml(self, request: Request) -> Response:
        """(admin) A YAML policy document becomes the policy's next, active version (unless unchanged)."""
        note = request.query_params.get("note")
        if isinstance(request.data, str):
            text = request.data
        else:
            data = _valid(s.PolicyImportSerializer, request.data)
            text, note = data["yaml"], data.get("note", note)
        v, created = policy_io.import_yaml(text, user=request.user, name=request.query_params.get("name") or None,
                                           note=note)
        body = {"created": created, "version": s.PolicyVersionSerializer(v).data}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CategoryViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """The taxonomy (everyone reads; admins add categories)."""

    serializer_class = s.CategorySerializer
    pagination_class = None
    queryset = Category.objects.all()

    def get_permissions(self) -> list[Any]:
        return [IsAdmin()] if self.action == "create" else [IsAuthenticated()]

    def perform_create(self, serializer: s.CategorySerializer) -> None:
        with transaction.atomic():
            cat = serializer.save(builtin=False)
            record("category.created", target_type="category", target_id=cat.code, actor=Actor.user(self.request.user),
                   payload={"name": cat.name, "severity": cat.severity})


# ------------------------------------------------------------------ hash banks
class HashBankViewSet(ServiceErrors, viewsets.ModelViewSet):
    """Hash banks (admins): ``block`` banks make matches signals, ``allow`` banks suppress them."""

    permission_classes = [IsAdmin]
    serializer_class = s.HashBankSerializer
    filterset_fields = ["kind", "enabled"]
    queryset = HashBank.objects.none()

    def get_queryset(self) -> QuerySet[HashBank]:
        if _fake(self):
            return HashBank.objects.none()
        return HashBank.objects.annotate(entry_count=Count("entries"),
                                         enabled_count=Count("entries", filter=Q(entries__enabled=True))
                                         ).order_by("name")

    def _audit(self, verb: str, bank: HashBank, **payload: Any) -> None:
        record(verb, target_type="hash_bank", target_id=bank.name, actor=Actor.user(self.request.user),
               payload=payload)

    def perform_create(self, serializer: s.HashBankSerializer) -> None:
        with transaction.atomic():
            bank = serializer.save()
            self._audit("bank.created", bank, kind=bank.kind, threshold=bank.threshold, min_quality=bank.min_quality)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        resp = super().update(request, *args, **kwargs)
        resp.data = self.get_serializer(self.get_queryset().get(pk=resp.data["id"])).data  # with entry counts
        return resp

    def perform_update(self, serializer: s.HashBankSerializer) -> None:
        with transaction.atomic():
            bank = serializer.save()
            self._audit("bank.updated", bank, **{k: v for k, v in serializer.validated_data.items()})
            if bank.enabled and (serializer.validated_data.get("enabled")
                                 or {"threshold", "min_quality", "kind"} & set(serializer.validated_data)):
                transaction.on_commit(lambda: banks.scan_bank(bank))  # matches may have changed

    def perform_destroy(self, instance: HashBank) -> None:
        with transaction.atomic():
            self._audit("bank.deleted", instance, kind=instance.kind, entries=instance.entries.count())
            instance.delete()

    @extend_schema(request=s.HashBankEntryCreateSerializer,
                   responses={201: s.HashBankEntrySerializer,
                              200: OpenApiResponse(s.HashBankEntrySerializer, description="Already in the bank")})
    @action(detail=True, methods=["post"])
    def entries(self, request: Request, pk: str | None = None) -> Response:
        """Add a PDQ hash by hex; existing assets that match are re-moderated. (List entries with
        ``GET /hash-bank-entries/?bank=ID``.)"""
        bank = self.get_object()
        data = _valid(s.HashBankEntryCreateSerializer, request.data)
        entry, created = banks.add_entry(bank, data["hash_hex"], quality=data["quality"], label=data["label"],
                                         user=request.user)
        return Response(s.HashBankEntrySerializer(entry).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=s.BankAddAssetSerializer, responses={200: s.BankAddAssetResultSerializer})
    @action(detail=True, methods=["post"], url_path="add-asset")
    def add_asset(self, request: Request, pk: str | None = None) -> Response:
        """Add an asset's PDQ hashes (those of sufficient quality) to the bank."""
        bank = self.get_object()
        data = _valid(s.BankAddAssetSerializer, request.data)
        asset = MediaAsset.objects.filter(pk=data["asset"]).first()
        if asset is None:
            raise ApiError("No such asset.", code="not_found", status_code=404)
        ids = banks.add_asset(bank, asset, user=request.user, label=data["label"])
        entries = HashBankEntry.objects.filter(pk__in=ids).select_related("bank", "added_by").order_by("id")
        return Response({"added": len(ids), "entries": s.HashBankEntrySerializer(entries, many=True).data})

    @extend_schema(request={"text/csv": OpenApiTypes.STR, "multipart/form-data": s.BankImportSerializer,
                            "application/json": s.BankImportSerializer},
                   responses={200: s.BankImportResultSerializer})
    @action(detail=True, methods=["post"], url_path="import",
            parser_classes=[CsvParser, MultiPartParser, FormParser, JSONParser])
    def import_csv(self, request: Request, pk: str | None = None) -> Response:
        """Import CSV rows ``hash_hex,quality,label`` (header optional); malformed rows are listed in ``errors``."""
        bank = self.get_object()
        if isinstance(request.data, str):
            text = request.data
        else:
            data = _valid(s.BankImportSerializer, request.data)
            if data.get("file") is not None:
                text = data["file"].read().decode("utf-8-sig", "replace")
            elif data.get("csv") is not None:
                text = data["csv"]
            else:
                raise ValidationError({"file": ["send a CSV file, `csv` text, or a text/csv body"]})
        result = banks.import_csv(bank, text, user=request.user)
        return Response(result.as_dict())

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        """Every entry as CSV ``hash_hex,quality,label``."""
        bank = self.get_object()
        resp = StreamingHttpResponse(banks.export_csv(bank), content_type="text/csv; charset=utf-8")
        resp["Content-Disposition"] = f'attachment; filename="bank-{bank.name}.csv"'
        return resp

    @extend_schema(request=None, responses={202: OpenApiResponse(description="Scan queued")})
    @action(detail=True, methods=["post"])
    def scan(self, request: Request, pk: str | None = None) -> Response:
        """Scan the library for matches of every enabled entry and re-moderate them."""
        bank = self.get_object()
        n = banks.scan_bank(bank)
        self._audit("bank.scan_requested", bank, entries=n)
        return Response({"entries": n}, status=status.HTTP_202_ACCEPTED)


class HashBankEntryViewSet(ServiceErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Hash bank entries (admins): enable/disable, relabel, delete."""

    permission_classes = [IsAdmin]
    serializer_class = s.HashBankEntrySerializer
    filterset_fields = ["bank", "enabled"]
    http_method_names = ["get", "patch", "delete", "head", "options"]
    queryset = HashBankEntry.objects.none()

    def get_queryset(self) -> QuerySet[HashBankEntry]:
        if _fake(self):
            return HashBankEntry.objects.none()
        return HashBankEntry.objects.select_related("bank", "added_by").order_by("id")

    @extend_schema(request=s.HashBankEntryUpdateSerializer, responses=s.HashBankEntrySerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Enable or disable the entry (enabling re-scans the library), or change its label."""
        entry = self.get_object()
        data = _valid(s.HashBankEntryUpdateSerializer, request.data)
        with transaction.atomic():
            if "enabled" in data:
                banks.set_entry_enabled(entry, data["enabled"], user=request.user)
            if "label" in data and data["label"] != entry.label:
                HashBankEntry.objects.filter(pk=entry.pk).update(label=data["label"])
                record("bank.entry_relabelled", target_type="hash_bank", target_id=entry.bank.name,
                       actor=Actor.user(request.user), payload={"entry": entry.pk, "label": data["label"]})
        return Response(self.get_serializer(self.get_queryset().get(pk=entry.pk)).data)

    def perform_destroy(self, instance: HashBankEntry) -> None:
        with transaction.atomic():
            record("bank.entry_deleted", target_type="hash_bank", target_id=instance.bank.name,
                   actor=Actor.user(self.request.user),
                   payload={"entry": instance.pk, "hash": banks.bits_to_hex(instance.hash)})
            instance.delete()


# ------------------------------------------------------------------ webhooks
class WebhookSubscriptionViewSet(viewsets.ModelViewSet):
    """Webhook subscriptions (admins). The secret is shown once, in the response to create."""

    permission_classes = [IsAdmin]
    serializer_class = s.WebhookSubscriptionSerializer
    filterset_fields = ["enabled"]
    queryset = WebhookSubscription.objects.none()

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        if _fake(self):
            return WebhookSubscription.objects.none()
        return WebhookSubscription.objects.order_by("id")

    @extend_schema(responses={201: s.WebhookSubscriptionCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        sub = _target_checked(lambda: webhooks.create_subscription(request.user, **ser.validated_data))
        return Response(s.WebhookSubscriptionCreatedSerializer(sub).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: s.WebhookSubscriptionSerializer) -> None:
        sub = serializer.instance
        serializer.instance = _target_checked(
            lambda: webhooks.update_subscription(sub, self.request.user, **serializer.validated_data))

    def perform_destroy(self, instance: WebhookSubscription) -> None:
        webhooks.delete_subscription(instance, self.request.user)


def _target_checked(action: Any) -> Any:
    """Run a subscription action; a URL refused by the action's own check is a 400 on ``url``."""
    from apps.moderation import outbound

    try:
        return action()
    except outbound.TargetError as e:
        raise ApiError("The request is invalid.", code="invalid", detail={"url": [str(e)]}) from None


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The delivery log (admins), newest first; redeliver one by hand."""

    permission_classes = [IsAdmin]
    serializer_class = s.WebhookDeliverySerializer
    filterset_fields = ["subscription", "status", "event", "event_id", "last_error_kind"]
    queryset = WebhookDelivery.objects.none()

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        if _fake(self):
            return WebhookDelivery.objects.none()
        return WebhookDelivery.objects.select_related("subscription").order_by("-created_at", "-id")

    @extend_schema(request=None, responses={202: s.WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        """Send it again now, with a fresh attempt budget."""
        d = webhooks.redeliver(self.get_object(), request.user)
        return Response(self.get_serializer(d).data, status=status.HTTP_202_ACCEPTED)


# ------------------------------------------------------------------ audit
class AuditFilter(df.FilterSet):
    since = TimestampFilter(field_name="created_at", lookup_expr="gte")
    until = TimestampFilter(field_name="created_at", lookup_expr="lt")
    verb_prefix = df.CharFilter(field_name="verb", lookup_expr="startswith")

    class Meta:
        model = AuditEvent
        fields = ["target_type", "target_id", "verb", "actor_type", "actor_id", "request_id"]


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The append-only, hash-chained audit trail (admins), newest first."""

    permission_classes = [IsAdmin]
    serializer_class = s.AuditEventSerializer
    filterset_class = AuditFilter
    queryset = AuditEvent.objects.none()

    def get_queryset(self) -> QuerySet[AuditEvent]:
        if _fake(self):
            return AuditEvent.objects.none()
        return AuditEvent.objects.order_by("-id")

    @extend_schema(responses=s.AuditVerifySerializer, filters=False)
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def verify(self, request: Request) -> Response:
        """Walk the whole chain: every hash recomputes and links to its predecessor."""
        r = verify()
        return Response({"ok": r.ok, "checked": r.checked, "problems": r.problems[:1000]})


@extend_schema_view(list=extend_schema(parameters=[OpenApiParameter("asset_id", OpenApiTypes.UUID,
                                                                    OpenApiParameter.PATH)]))
class AssetAuditViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The audit events of one asset (moderators), oldest first."""

    permission_classes = [IsModerator]
    serializer_class = s.AuditEventSerializer
    filterset_class = None
    queryset = AuditEvent.objects.none()

    def get_queryset(self) -> QuerySet[AuditEvent]:
        if _fake(self):
            return AuditEvent.objects.none()
        asset = get_object_or_404(MediaAsset, pk=self.kwargs["asset_id"])
        return AuditEvent.objects.filter(target_type="asset", target_id=str(asset.pk)).order_by("id")


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
    router.register("audit", AuditEventViewSet, basename="audit")
    router.register(rf"assets/(?P<asset_id>{UUID_RE})/audit", AssetAuditViewSet, basename="asset-audit")
