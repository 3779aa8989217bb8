"""Console page for policies: every version, the active one as YAML, and (admins) a new version."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.core.roles import MODERATOR, has_role, is_admin
from apps.moderation.actions import import_policy
from apps.moderation.models import Category, PolicyVersion
from apps.moderation.policy_io import export_yaml
from apps.moderation.services import ModerationError, active_policy_version


@login_required
def policy_page(request: HttpRequest) -> HttpResponse:
    """Moderators read; admins save an edited YAML document as the next version (audited)."""
    if not has_role(request.user, MODERATOR):
        raise PermissionDenied
    active = active_policy_version()
    text = export_yaml(active)
    if request.method == "POST":
        if not is_admin(request.user):
            raise PermissionDenied
        text = request.POST.get("document", "")
        try:
            version, created = import_policy(text, user=request.user,
                                             note=request.POST.get("note", "").strip() or None)
        except (ModerationError, ValueError) as e:
            messages.error(request, f"Not saved: {e}")
        else:
            if created:
                messages.success(request, f"Saved as {version.label}. Re-moderate the library with "
                                          "`manage.py reprocess --stale --stage moderate`.")
            else:
                messages.info(request, "No change: the rules equal the active version.")
            return redirect("console-policy")
    versions = PolicyVersion.objects.filter(policy=active.policy).select_related("created_by").order_by("-number")
    return render(request, "console/policy.html", {
        "active": active, "document": text, "versions": versions, "categories": Category.objects.all(),
        "can_edit": is_admin(request.user)})
