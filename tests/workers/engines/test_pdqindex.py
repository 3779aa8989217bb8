"""The multi-index-hashing PDQ index is exact: every hash within the radius, none beyond."""

from __future__ import annotations

import numpy as np
import pytest

from workers.engines.pdqindex import PdqIndex, distances


def _flip(h: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    out = h.copy()
    for bit in rng.choice(256, n, replace=False):
        out[bit // 8] ^= np.uint8(1 << (7 - bit % 8))
    return out


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (20, 32), dtype=np.uint8)
    random = rng.integers(0, 256, (20_000, 32), dtype=np.uint8)
    planted = np.stack([_flip(base[i % 20], d, rng) for i, d in enumerate(list(range(0, 41)) * 3)])
    hashes = np.concatenate([random, planted])
    return base, hashes, np.arange(len(hashes), dtype=np.int64) * 3 + 100


@pytest.mark.parametrize("tables", [True, False])
@pytest.mark.parametrize("radius", [0, 5, 10, 11, 21, 22, 31, 32, 33, 40])
def test_search_returns_exactly_the_hashes_within_the_radius(corpus, radius, tables):
    base, hashes, ids = corpus
    index = PdqIndex(ids, hashes, tables_from=0 if tables else len(ids) + 1)
    for q in base:
        found, d = index.search(q, radius)
        truth = distances(q, hashes)
        assert sorted(found.tolist()) == sorted(ids[truth <= radius].tolist())
        assert d.tolist() == sorted(truth[truth <= radius].tolist())


def test_added_hashes_are_found_and_removed_ones_are_not(corpus):
    base, hashes, ids = corpus
    rng = np.random.default_rng(3)
    index = PdqIndex(ids[:1000], hashes[:1000], tables_from=0)
    near = _flip(base[0], 31, rng)
    index.add([5], [near.tobytes()])
    assert 5 in index.search(base[0], 31)[0].tolist()
    assert 5 not in index.search(base[0], 30)[0].tolist()
    assert index.remove([5, ids[0]]) == 2
    assert 5 not in index.search(base[0], 31)[0].tolist()
    assert ids[0] not in index.search(hashes[0], 0)[0].tolist()
    index.add([6], [near.tobytes()])
    index.compact()  # merged into the tables: still exact, the removed ones stay gone
    assert index.search(base[0], 31)[0].tolist() == [6]
    assert len(index) == 1000


def test_hashes_added_to_an_empty_index_are_exact_before_and_after_merging(corpus):
    base, hashes, ids = corpus
    index = PdqIndex(tables_from=0)
    index.add(ids, hashes)
    assert sorted(index.search(base[1], 31)[0].tolist()) == sorted(ids[distances(base[1], hashes) <= 31].tolist())
    index.compact()
    assert len(index) == len(ids)
    found = index.search(base[1], 31)[0]
    assert sorted(found.tolist()) == sorted(ids[distances(base[1], hashes) <= 31].tolist())


def test_dihedral_variants_of_the_query_find_a_rotated_copy():
    from PIL import Image

    from workers.engines import phash

    rng = np.random.default_rng(11)
    img = Image.fromarray((rng.random((64, 64)) * 255).astype(np.uint8)).resize((256, 256)).convert("RGB")
    rotated = phash.compute(img.rotate(90, expand=True))
    others = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    index = PdqIndex(np.arange(5001), np.concatenate([others, np.frombuffer(bytes.fromhex(rotated.hex),
                                                                             np.uint8)[None, :]]))
    original = phash.compute(img)
    assert 5000 not in index.search(original.hex, 31)[0].tolist()  # plain query: the rotation is far
    ids, d = index.search_many([v.hex for v in phash.dihedral(img)], 31)
    assert 5000 in ids.tolist() and d[ids.tolist().index(5000)] <= 31
