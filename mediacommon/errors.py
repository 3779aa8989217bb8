"""The error contract for reading media, shared by the probe and every worker engine.

``workers.engines.base`` re-exports these classes (same objects), so ``except
PermanentEngineError`` in the worker catches what :func:`mediacommon.container.probe` raises, and
the class names recorded in stage runs and dead letters stay the same.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class for engine (and probe) failures."""


class PermanentEngineError(EngineError):
    """Input or configuration that will never succeed (corrupt media, missing weights)."""


class TransientEngineError(EngineError):
    """A failure worth retrying (resource exhaustion, I/O hiccup)."""
