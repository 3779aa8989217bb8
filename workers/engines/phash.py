"""PDQ perceptual hashes (Meta's PDQ through ``pdqhash``).

A hash is 256 bits, kept as a ``'0'/'1'`` string (what pgvector's ``bit(256)`` accepts) and as
64 hex digits (the form ThreatExchange / HMA hash lists use). Two images match when the Hamming
distance is ≤ 31; hashes with quality < 50 (flat or near-flat images) are too weak to match on.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from workers.engines.base import EngineInfo, PermanentEngineError, to_rgb_array

if TYPE_CHECKING:
    from workers.engines.base import ImageInput

MATCH_THRESHOLD = 31
MIN_QUALITY = 50
# pdqhash.compute_dihedral order (PDQ's FlipX = upside down, FlipY = mirror, FlipPlus1 = transpose).
DIHEDRAL_NAMES = (
    "original",
    "rot90",
    "rot180",
    "rot270",
    "flip_vertical",
    "mirror",
    "transpose",
    "antitranspose",
)

info = EngineInfo(
    name="pdq",
    version=f"pdqhash-{importlib.metadata.version('pdqhash')}",
    device="cpu",
)


@dataclass(frozen=True)
class PdqHash:
    """One PDQ hash: 256 bits (MSB first), the same bits as hex, and PDQ's 0..100 quality."""

    bits: str
    hex: str
    quality: int

    @classmethod
    def from_bits(cls, bits: str, quality: int) -> PdqHash:
        """Build from a 256-char ``'0'/'1'`` string."""
        if len(bits) != 256 or set(bits) - {"0", "1"}:
            raise ValueError("PDQ bits must be a 256-char '0'/'1' string")
        return cls(bits=bits, hex=f"{int(bits, 2):064x}", quality=int(quality))

    @classmethod
    def from_hex(cls, hex_digest: str, quality: int = 100) -> PdqHash:
        """Build from 64 hex digits (e.g. a hash from a shared hash list)."""
        if len(hex_digest) != 64:
            raise ValueError("PDQ hex must be 64 hex digits")
        return cls.from_bits(f"{int(hex_digest, 16):0256b}", quality)

    @property
    def as_int(self) -> int:
        """The 256 bits as one integer."""
        return int(self.bits, 2)


@dataclass(frozen=True)
class PdqMatch:
    """A candidate that matched a query, with the smallest distance over the query's dihedral variants."""

    index: int
    distance: int
    variant: str


def _from_vector(vector: np.ndarray, quality: int) -> PdqHash:
    bits = (np.asarray(vector, dtype=np.uint8) + ord("0")).tobytes().decode("ascii")
    return PdqHash.from_bits(bits, quality)


def _luma_input(image: ImageInput) -> np.ndarray:
    """RGB uint8 array as pdqhash wants it (it converts to luma itself)."""
    return to_rgb_array(image)


def compute(image: ImageInput) -> PdqHash:
    """PDQ hash of one image (PIL image or RGB uint8 array)."""
    import pdqhash

    vector, quality = pdqhash.compute(_luma_input(image))
    return _from_vector(vector, quality)


def compute_batch(images: Sequence[ImageInput]) -> list[PdqHash]:
    """PDQ hashes of several images, in order."""
    return [compute(image) for image in images]


def dihedral(image: ImageInput) -> list[PdqHash]:
    """The 8 dihedral variants (rotations, flips), in :data:`DIHEDRAL_NAMES` order; index 0 is the image."""
    import pdqhash

    vectors, quality = pdqhash.compute_dihedral(_luma_input(image))
    return [_from_vector(v, quality) for v in vectors]


def hamming(a: PdqHash | str, b: PdqHash | str) -> int:
    """Hamming distance between two hashes (``PdqHash``, bit strings or hex strings)."""
    return (_as_int(a) ^ _as_int(b)).bit_count()


def _as_int(h: PdqHash | str) -> int:
    if isinstance(h, PdqHash):
        return h.as_int
    if len(h) == 256:
        return int(h, 2)
    if len(h) == 64:
        return int(h, 16)
    raise PermanentEngineError(f"not a PDQ hash: {len(h)} chars (want 256 bits or 64 hex digits)")


def match(
    query: ImageInput | PdqHash | Sequence[PdqHash],
    candidates: Iterable[PdqHash],
    threshold: int = MATCH_THRESHOLD,
    min_quality: int = MIN_QUALITY,
) -> list[PdqMatch]:
    """Candidates within ``threshold`` of any dihedral variant of the query, best first.

    ``query`` is an image (its 8 variants are hashed), one hash, or a list of variant hashes. A query
    or candidate below ``min_quality`` never matches.
    """
    if isinstance(query, PdqHash):
        variants = [query]
    elif isinstance(query, (list, tuple)) and all(isinstance(q, PdqHash) for q in query):
        variants = list(query)
    else:
        variants = dihedral(query)  # type: ignore[arg-type]
    if not variants or variants[0].quality < min_quality:
        return []
    names = DIHEDRAL_NAMES if len(variants) == len(DIHEDRAL_NAMES) else [str(i) for i in range(len(variants))]
    ints = [v.as_int for v in variants]
    found: list[PdqMatch] = []
    for index, cand in enumerate(candidates):
        if cand.quality < min_quality:
            continue
        c = cand.as_int
        distance, which = min(((q ^ c).bit_count(), i) for i, q in enumerate(ints))
        if distance <= threshold:
            found.append(PdqMatch(index=index, distance=distance, variant=names[which]))
    found.sort(key=lambda m: (m.distance, m.index))
    return found
