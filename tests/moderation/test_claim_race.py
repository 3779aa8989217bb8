"""Two moderators claim the same item at the same moment, through the API on separate connections."""

from __future__ import annotations

import threading

import pytest

from apps.moderation.models import ReviewItem
from tests.conftest import in_threads
from tests.moderation.helpers import api, flag, make_asset, make_user, moderated

pytestmark = pytest.mark.django_db(transaction=True)


def _race(item_id: str, users: list) -> list[tuple[str, int, str]]:
    barrier = threading.Barrier(len(users))
    results: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def claim(user) -> None:
        client = api(user)
        barrier.wait(timeout=10)
        r = client.post(f"/api/v1/review-items/{item_id}/claim")
        code = r.json().get("error", {}).get("code", "") if r.status_code != 200 else ""
        with lock:
            results.append((user.username, r.status_code, code))

    in_threads(claim, [(u,) for u in users])
    return results


def test_concurrent_claims_exactly_one_wins():
    mods = [make_user(f"racer{i}", "moderator") for i in range(4)]
    uploader = make_user("author", "uploader")
    for round_ in range(5):
        asset = make_asset(uploader, title=f"round {round_}")
        flag(asset, "threat", 0.9)
        moderated(asset)
        item = ReviewItem.objects.get(asset=asset)
        results = _race(str(item.pk), mods)
        assert len(results) == len(mods)
        winners = [name for name, status, _ in results if status == 200]
        assert len(winners) == 1, results
        assert sorted(code for _, status, code in results if status != 200) == ["claimed"] * (len(mods) - 1)
        item.refresh_from_db()
        assert item.state == "claimed" and item.claimed_by.username == winners[0]
