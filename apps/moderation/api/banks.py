"""Hash banks and their entries (admins): create, import, export, match."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiRequest, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.assets.models import MediaAsset
from apps.core.errors import ApiError
from apps.core.openapi import AutoSchema, body_required
from apps.core.parsers import MultiPartParser
from apps.core.roles import IsAdmin
from apps.core.schema import generating_schema
from apps.moderation import actions, banks
from apps.moderation import serializers as s
from apps.moderation.api._common import (
    CsvParser,
    ServiceErrors,
    _valid,
)
from apps.moderation.models import (
    HashBank,
    HashBankEntry,
)


class HashBankViewSet(ServiceErrors, viewsets.ModelViewSet):
    """Hash banks (admins): ``block`` banks make matches signals, ``allow`` banks suppress them."""

    permission_classes = [IsAdmin]
    serializer_class = s.HashBankSerializer
    schema = AutoSchema()  # the import's body is required
    filterset_fields = ["kind", "enabled"]
    ordering_fields = ["name", "created_at", "kind"]
    ordering = ["name"]
    queryset = HashBank.objects.none()

    def get_queryset(self) -> QuerySet[HashBank]:
        if generating_schema(self):
            return HashBank.objects.none()
        return HashBank.objects.annotate(entry_count=Count("entries"),
                                         enabled_count=Count("entries", filter=Q(entries__enabled=True))
                                         ).order_by("name")

    def perform_create(self, serializer: s.HashBankSerializer) -> None:
        serializer.instance = actions.create_bank(user=self.request.user, **serializer.validated_data)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        resp = super().update(request, *args, **kwargs)
        resp.data = self.get_serializer(self.get_queryset().get(pk=resp.data["id"])).data  # with entry counts
        return resp

    def perform_update(self, serializer: s.HashBankSerializer) -> None:
        serializer.instance = actions.update_bank(serializer.instance, user=self.request.user,
                                                  **serializer.validated_data)

    def perform_destroy(self, instance: HashBank) -> None:
        actions.delete_bank(instance, user=self.request.user)

    @extend_schema(request=s.HashBankEntryCreateSerializer,
                   responses={201: s.HashBankEntrySerializer,
                              200: OpenApiResponse(s.HashBankEntrySerializer, description="Already in the bank")})
    @action(detail=True, methods=["post"])
    def entries(self, request: Request, pk: str | None = None) -> Response:
        """Add a PDQ hash by hex; existing assets that match are re-moderated. (List entries with
        ``GET /hash-bank-entries/?bank=ID``.)"""
        bank = self.get_object()
        data = _valid(s.HashBankEntryCreateSerializer, request.data)
        entry, created = actions.add_bank_entry(bank, data["hash_hex"], quality=data["quality"], label=data["label"],
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
        ids = actions.add_asset_to_bank(bank, asset, user=request.user, label=data["label"])
        entries = HashBankEntry.objects.filter(pk__in=ids).select_related("bank", "added_by").order_by("id")
        return Response({"added": len(ids), "entries": s.HashBankEntrySerializer(entries, many=True).data})

    @extend_schema(request={"text/csv": OpenApiTypes.STR,
                            "multipart/form-data": OpenApiRequest(s.BankImportSerializer,
                                                                  encoding={"file": {"contentType": "text/csv"}}),
                            "application/json": s.BankImportJsonSerializer},
                   responses={200: s.BankImportResultSerializer})
    @action(detail=True, methods=["post"], url_path="import",
            parser_classes=[CsvParser, MultiPartParser, FormParser, JSONParser])
    @body_required
    def import_csv(self, request: Request, pk: str | None = None) -> Response:
        """Import CSV rows ``hash_hex,quality,label`` (header optional); malformed rows are listed in ``errors``."""
        bank = self.get_object()
        if request.content_type.startswith("text/csv"):  # an empty body is an empty CSV (DRF gives no str then)
            text = request.data if isinstance(request.data, str) else ""
        elif not hasattr(request.data, "getlist"):  # JSON: an object with the CSV text, nothing else
            text = _valid(s.BankImportJsonSerializer, request.data)["csv"]
        else:
            data = _valid(s.BankImportSerializer, request.data)  # file, csv or both (the file's rows first)
            texts = ([data["file"].read().decode("utf-8-sig", "replace")] if data.get("file") is not None else []) \
                + ([data["csv"]] if data.get("csv") is not None else [])
            results = [actions.import_bank_csv(bank, t, user=request.user) for t in texts]
            return Response({"added": sum(r.added for r in results), "existing": sum(r.existing for r in results),
                             "errors": [e for r in results for e in r.errors]})
        result = actions.import_bank_csv(bank, text, user=request.user)
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
        n = actions.request_bank_scan(self.get_object(), user=request.user)
        return Response({"entries": n}, status=status.HTTP_202_ACCEPTED)


class HashBankEntryViewSet(ServiceErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Hash bank entries (admins): enable/disable, relabel, delete."""

    permission_classes = [IsAdmin]
    serializer_class = s.HashBankEntrySerializer
    filterset_fields = ["bank", "enabled", "source_asset"]
    ordering_fields = ["id", "created_at", "quality", "label"]
    ordering = ["id"]
    http_method_names = ["get", "patch", "delete", "head", "options"]
    queryset = HashBankEntry.objects.none()

    def get_queryset(self) -> QuerySet[HashBankEntry]:
        if generating_schema(self):
            return HashBankEntry.objects.none()
        return HashBankEntry.objects.select_related("bank", "added_by").order_by("id")

    @extend_schema(request=s.HashBankEntryUpdateSerializer, responses=s.HashBankEntrySerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Enable or disable the entry (enabling re-scans the library), or change its label."""
        entry = self.get_object()
        data = _valid(s.HashBankEntryUpdateSerializer, request.data)
        actions.update_bank_entry(entry, user=request.user, enabled=data.get("enabled"), label=data.get("label"))
        return Response(self.get_serializer(self.get_queryset().get(pk=entry.pk)).data)

    def perform_destroy(self, instance: HashBankEntry) -> None:
        actions.delete_bank_entry(instance, user=self.request.user)


