"""Broker priority of an asset's stage messages: short work is taken before long work.

The Redis broker keeps one list per priority step (kombu's default steps 0, 3, 6, 9; **0 is taken
first**) and a worker takes the next message from the highest-priority list of any queue it
consumes; within a step each queue stays first in, first out. So an image or a text uploaded after
a batch of videos does not wait behind every video stage queued before it.

Invariant: an asset's priority depends only on its kind and media duration, the same for every
stage of the asset (a job's stages never overtake each other through priority):

* no timeline (image, text): 0;
* video or audio: by duration: up to :data:`SHORT_S` → 3, up to :data:`MEDIUM_S` → 6, longer → 9;
  not probed yet (duration unknown) → 3.

Work of lower priority waits only while higher-priority messages are queued: with a steady flood
of images a video's stages wait (no ageing); the queue-age metric shows it.
"""

from __future__ import annotations

SHORT_S = 120.0
MEDIUM_S = 1800.0
TIMELINE_KINDS = frozenset({"video", "audio"})


def for_asset(kind: str | None, duration: float | None) -> int:
    """The broker priority (0 first … 9 last) of the stage messages of an asset of ``kind``."""
    if kind not in TIMELINE_KINDS:
        return 0
    if duration is None or duration <= SHORT_S:
        return 3
    return 6 if duration <= MEDIUM_S else 9
