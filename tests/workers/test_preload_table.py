"""``MEDIAINTEL_PRELOAD=role`` warms every engine a worker's queues run.

A stage whose engine has a preloader but whose queue does not list it is loaded on the first
message instead (tens of seconds on the first asset): the faces stage on the detect queue was.
"""

from __future__ import annotations

from mediacommon.routing import STAGE_QUEUES
from workers.process import FORK_UNSAFE, PRELOADERS, QUEUE_ENGINES


def test_every_preloadable_stage_is_warmed_by_its_queue():
    missing = {stage: queue for stage, queue in STAGE_QUEUES.items()
               if stage in PRELOADERS and stage not in QUEUE_ENGINES.get(queue, ())}
    assert missing == {}


def test_the_queue_table_names_only_known_engines():
    named = {e for engines in QUEUE_ENGINES.values() for e in engines}
    assert named <= set(PRELOADERS) and set(PRELOADERS) >= FORK_UNSAFE
