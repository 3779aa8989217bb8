"""Hash-bank benchmark: millions of PDQ hashes in one bank, lookups at distance ≤ 31, recall, memory.

Run on the test profile's stack::

    MEDIAINTEL_PROFILE=test .venv/bin/python bench/banks.py                 # 1M entries (default)
    MEDIAINTEL_PROFILE=test .venv/bin/python bench/banks.py --size 10000000 # the HMA single-box goal

What it does:

* **hashes** — generated with a fixed seed: ``--known`` query hashes (never inserted) and, for each,
  ``--per-known`` planted near-duplicates at distances 1..31 (cycling, bits chosen at random); the
  planted copies of every fifth known hash are made from one of its 7 other dihedral variants
  (rotations/flips of the 16×16 bit grid, a stand-in for PDQ's dihedral hashes), so only a lookup
  with the 8 variants finds them. The rest of ``--size`` is uniform random hashes;
* **database** — its own database ``mediaintel_banksbench`` on the test profile's PostgreSQL
  (created and migrated when missing; the test database is never touched). The entries go into
  ``moderation_hashbankentry`` (the production table, its primary key and ``(bank, hash)`` unique
  index) of one block bank by COPY, timed; the table's size is read from PostgreSQL;
* **product path** — ``workers.bankindex.BankIndex`` (what each worker pool child installs)
  loads the table (binary COPY + the multi-index-hashing build, timed; process RSS/PSS before and
  after), then ``apps.moderation.bankmatch.match`` (the moderate stage's lookup: index search, then
  one statement reading the candidates' rows, the entries newer than the index and the threshold)
  answers every known hash, alone and with its 8 variants: lookups/s and recall of the planted
  near-duplicates; the bare in-memory search is timed too, and the previous product path (a
  catch-up statement, then a re-read of the candidates) as a baseline;
* **baselines, same run** — brute-force numpy popcount over all hashes; the exact SQL scan
  (``bankmatch`` without an index: what a web process does); and the previous path, pgvector HNSW
  (``bit_hamming_ops``, m=16, ef_construction=64) built on the first ``--hnsw-size`` hashes (all
  planted ones included) in a table of its own: build time, size, and the old statement
  (``ORDER BY hash <~> q LIMIT 10``, ef_search 40) plus a wider one (LIMIT 100, ef_search 400);
* prints tables and writes the ``## Hash banks`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MEDIAINTEL_PROFILE", "test")

from bench._db import bench_url, prepare_database  # noqa: E402
from bench._report import commit, machine_line, md_table, write_section  # noqa: E402

DB_NAME = "mediaintel_banksbench"
SECTION = "Hash banks"
RADIUS = 31
GOAL_LPS, GOAL_RECALL, GOAL_BYTES = 500.0, 0.99, 8 * 1024**3
BLOCK = 200_000


# --------------------------------------------------------------------------- hashes
def variants(h: np.ndarray) -> np.ndarray:
    """The 8 dihedral variants of a hash's 16×16 bit grid ((8, 32) uint8, the hash itself first)."""
    g = np.unpackbits(h).reshape(16, 16)
    grids = [g, np.rot90(g, 1), np.rot90(g, 2), np.rot90(g, 3), np.flipud(g), np.fliplr(g), g.T, np.rot90(g, 2).T]
    return np.stack([np.packbits(x.ravel()) for x in grids])


def generate(size: int, known: int, per_known: int, seed: int) -> dict[str, Any]:
    """Known (query) hashes, the bank's hashes (planted first), and who each planted copy belongs to."""
    rng = np.random.default_rng(seed)
    queries = rng.integers(0, 256, (known, 32), dtype=np.uint8)
    planted = known * per_known
    hashes = np.empty((size, 32), np.uint8)
    owner = np.repeat(np.arange(known), per_known)
    dist = (np.arange(planted) % RADIUS) + 1
    dihedral_known = np.arange(known) % 5 == 4
    for p in range(planted):
        k = owner[p]
        base = variants(queries[k])[1 + p % 7] if dihedral_known[k] else queries[k]
        bits = np.unpackbits(base)
        bits[rng.choice(256, dist[p], replace=False)] ^= 1
        hashes[p] = np.packbits(bits)
    for start in range(planted, size, 1_000_000):
        n = min(1_000_000, size - start)
        hashes[start:start + n] = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    return {"queries": queries, "hashes": hashes, "owner": owner, "planted": planted,
            "dihedral_known": dihedral_known}


def bits(h: np.ndarray) -> str:
    return "".join("1" if b else "0" for b in np.unpackbits(h))


# --------------------------------------------------------------------------- database
def setup_django() -> None:
    from mediaintel import devstack

    broker = devstack.profile("test").broker_url.rsplit("/", 1)[0] + "/9"
    os.environ.update(DATABASE_URL=bench_url(DB_NAME), BROKER_URL=broker, REDIS_URL=broker,
                      DJANGO_SETTINGS_MODULE="mediaintel.settings", MEDIAINTEL_ENV="development")
    import django

    django.setup()


def _sql(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(sql, params or [])
        return cur.fetchall() if cur.description else []


def _copy_rows(table_sql: str, hashes: np.ndarray, prefix: bytes, suffix: bytes) -> None:
    """COPY text rows ``prefix + 256 bits + suffix`` (one per hash) in blocks."""
    from django.db import connection

    width = len(prefix) + 256 + len(suffix)
    with connection.cursor() as cur, cur.cursor.copy(f"COPY {table_sql} FROM STDIN") as copy:
        for start in range(0, len(hashes), BLOCK):
            block = hashes[start:start + BLOCK]
            buf = np.empty((len(block), width), np.uint8)
            buf[:, :len(prefix)] = np.frombuffer(prefix, np.uint8)
            buf[:, len(prefix):len(prefix) + 256] = np.unpackbits(block, axis=1) + ord("0")
            buf[:, len(prefix) + 256:] = np.frombuffer(suffix, np.uint8)
            copy.write(buf.tobytes())


def load_bank(data: dict[str, Any], name: str) -> dict[str, float]:
    """The bank ``name`` holding every generated hash (loaded unless already there)."""
    from apps.moderation.models import HashBank

    bank = HashBank.objects.filter(name=name).first()
    n = len(data["hashes"])
    record = ROOT / "var" / "bench-banks" / f"{name}.json"
    if bank is not None and bank.entries.count() == n and record.exists():
        print(f"bank {name} already holds {n} entries: not reloaded", flush=True)
        return {**json.loads(record.read_text()), "reused": 1.0}
    _sql("TRUNCATE moderation_hashbankentry CASCADE")
    HashBank.objects.all().delete()
    bank = HashBank.objects.create(name=name, threshold=RADIUS, min_quality=50)
    print(f"loading {n} entries …", flush=True)
    t0 = time.perf_counter()
    _copy_rows("moderation_hashbankentry (bank_id, hash, quality, enabled, label, created_at)", data["hashes"],
               f"{bank.pk}\t".encode(), b"\t100\tt\tbench\t2026-01-01 00:00:00+00\n")
    load_s = time.perf_counter() - t0
    _sql("VACUUM ANALYZE moderation_hashbankentry")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"load_s": load_s, "loaded_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}))
    return {"load_s": load_s}


# --------------------------------------------------------------------------- memory
def memory() -> dict[str, float]:
    """This process's RSS and PSS in bytes (smaps_rollup)."""
    text = Path("/proc/self/smaps_rollup").read_text()
    kb = {k: int(v) for k, v in re.findall(r"^(Rss|Pss):\s+(\d+) kB", text, re.M)}
    return {"rss": kb.get("Rss", 0) * 1024.0, "pss": kb.get("Pss", 0) * 1024.0}


def gib(b: float) -> str:
    return f"{b / 1024**3:.2f} GiB"


# --------------------------------------------------------------------------- measurements
def recall_of(found_ids: list[set[int]], data: dict[str, Any], first_id: int, dihedral: bool) -> tuple[int, int]:
    """(planted found, planted expected) over the known hashes a lookup of this kind must find."""
    owner, dk = data["owner"], data["dihedral_known"]
    hit = want = 0
    for k, ids in enumerate(found_ids):
        if dk[k] and not dihedral:
            continue
        expected = set((np.flatnonzero(owner == k) + first_id).tolist())
        want += len(expected)
        hit += len(expected & ids)
    return hit, want


def timed(fn, items) -> tuple[float, list[Any]]:
    t0 = time.perf_counter()
    out = [fn(x) for x in items]
    return time.perf_counter() - t0, out


def bench_product(data: dict[str, Any], first_id: int, dihedral_lookups: int) -> dict[str, Any]:
    from apps.moderation import bankmatch
    from workers.bankindex import BankIndex

    res: dict[str, Any] = {}
    before = memory()
    index = BankIndex()
    t0 = time.perf_counter()
    index.refresh()
    res["index_load_s"] = time.perf_counter() - t0
    after = memory()
    res["mem_before"], res["mem_after"], res["index_bytes"] = before, after, index.nbytes
    bankmatch.install_index(index)
    qs = data["queries"]
    qbits = [bits(q) for q in qs]
    dt, found = timed(lambda b: {f["id"] for f in bankmatch.match([b])[0]}, qbits)
    res["plain"] = (len(qs) / dt, *recall_of(found, data, first_id, False))
    nd = min(dihedral_lookups, len(qs))
    vbits = [[bits(v) for v in variants(q)] for q in qs[:nd]]
    dt, found = timed(lambda vs: {f["id"] for row in bankmatch.match(vs) for f in row}, vbits)
    res["dihedral"] = (nd / dt, *recall_of(found, data, first_id, True))
    from workers.engines.pdqindex import as_array

    def two_statements(b: str) -> set[int]:  # the path before one statement per lookup: catch-up, then re-read
        radius = index.refresh()
        ids = sorted(set(index._index.search(as_array([b])[0], radius)[0].tolist()))
        rows = _sql(f"SELECT {bankmatch.ENTRY_COLUMNS} FROM {bankmatch.ENTRIES} WHERE {bankmatch.ENABLED} "  # noqa: S608
                    "AND e.id = ANY(%s::bigint[])", [ids]) if ids else []
        return {r[0] for r in rows if (int(r[5], 2) ^ int(b, 2)).bit_count() <= r[6]}

    dt, found = timed(two_statements, qbits)
    res["two_statements"] = (len(qs) / dt, *recall_of(found, data, first_id, False))
    raw = index._index
    dt, found = timed(lambda q: set(raw.search(q, RADIUS)[0].tolist()), qs)
    res["raw_plain"] = (len(qs) / dt, *recall_of(found, data, first_id, False))
    dt, found = timed(lambda q: set(raw.search_many(variants(q), RADIUS)[0].tolist()), qs[:nd])
    res["raw_dihedral"] = (nd / dt, *recall_of(found, data, first_id, True))
    t0 = time.perf_counter()
    for _ in range(200):
        _sql("SELECT 1")
    res["round_trip_ms"] = (time.perf_counter() - t0) / 200 * 1000
    res["matched_random"] = sum(len(x) for x in bankmatch.match(
        [bits(h) for h in np.random.default_rng(99).integers(0, 256, (20, 32), dtype=np.uint8)]))
    bankmatch.install_index(None)
    return res


def bench_baselines(data: dict[str, Any], first_id: int, brute: int, sql: int) -> dict[str, Any]:
    from apps.moderation import bankmatch
    from workers.engines.pdqindex import distances

    res: dict[str, Any] = {}
    hashes, qs = data["hashes"], data["queries"]
    dt, found = timed(lambda q: set((np.flatnonzero(distances(q, hashes) <= RADIUS) + first_id).tolist()), qs[:brute])
    res["brute"] = (brute / dt, *recall_of(found, data, first_id, False))
    old = bankmatch.install_index(None)
    dt, found = timed(lambda q: {f["id"] for f in bankmatch.match([bits(q)])[0]}, qs[:sql])
    res["sql"] = (sql / dt, *recall_of(found, data, first_id, False))
    bankmatch.install_index(old)
    return res


def bench_hnsw(data: dict[str, Any], size: int, lookups: int) -> dict[str, Any]:
    from django.db import connection

    res: dict[str, Any] = {"size": size}
    _sql("DROP TABLE IF EXISTS bench_hnsw")
    _sql("CREATE TABLE bench_hnsw (id bigint PRIMARY KEY, hash bit(256) NOT NULL)")
    ids = np.arange(size, dtype=np.int64)
    with connection.cursor() as cur, cur.cursor.copy("COPY bench_hnsw (id, hash) FROM STDIN") as copy:
        for i in range(0, size, BLOCK):
            block = data["hashes"][i:min(i + BLOCK, size)]
            for j, h in enumerate(np.unpackbits(block, axis=1) + ord("0")):
                copy.write(f"{ids[i + j]}\t".encode() + h.tobytes() + b"\n")
    _sql("SET maintenance_work_mem = '1GB'")
    t0 = time.perf_counter()
    _sql("CREATE INDEX bench_hnsw_idx ON bench_hnsw USING hnsw (hash bit_hamming_ops) "
         "WITH (m = 16, ef_construction = 64)")
    res["build_s"] = time.perf_counter() - t0
    res["index_bytes"] = _sql("SELECT pg_relation_size('bench_hnsw_idx')")[0][0]
    qs = data["queries"][:lookups]
    for label, ef, limit in (("old statement: LIMIT 10, ef_search 40", 40, 10),
                             ("LIMIT 100, ef_search 400", 400, 100)):
        def one(q: np.ndarray, ef: int = ef, limit: int = limit) -> set[int]:
            b = bits(q)
            with connection.cursor() as cur:
                cur.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(ef)])
                cur.execute("SELECT id, hash <~> %s::bit(256) FROM bench_hnsw ORDER BY hash <~> %s::bit(256) "
                            "LIMIT %s", [b, b, limit])
                return {int(r[0]) for r in cur.fetchall() if r[1] <= RADIUS}
        dt, found = timed(one, qs)
        res[label] = (len(qs) / dt, *recall_of(found, data, 0, False))
    _sql("DROP TABLE bench_hnsw")
    return res


# --------------------------------------------------------------------------- report
def _load_avg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def report(args: argparse.Namespace, data: dict[str, Any], loaded: dict[str, float], prod: dict[str, Any],
           base: dict[str, Any], hnsw: dict[str, Any] | None, pg_bytes: int, gen_s: float, load_before: str) -> str:
    def row(name: str, r: tuple[float, int, int], n: str) -> tuple[str, ...]:
        lps, hit, want = r
        return (name, n, f"{lps:,.1f}", f"{hit / want:.4f} ({hit}/{want})" if want else "–")

    size = len(data["hashes"])
    rows = [("path", "lookups", "lookups/s", "recall of planted")]
    rows.append(row("product: `bankmatch.match`, in-memory index (1 hash)", prod["plain"], str(args.known)))
    rows.append(row("product: `bankmatch.match`, in-memory index (8 dihedral variants)", prod["dihedral"],
                    str(min(args.dihedral_lookups, args.known))))
    rows.append(row("baseline: the previous product path, catch-up query then re-read of the candidates "
                    "(2 statements, 1 hash)", prod["two_statements"], str(args.known)))
    rows.append(row("in-memory index alone (1 hash)", prod["raw_plain"], str(args.known)))
    rows.append(row("in-memory index alone (8 variants)", prod["raw_dihedral"],
                    str(min(args.dihedral_lookups, args.known))))
    rows.append(row("baseline: brute-force numpy popcount (1 hash)", base["brute"], str(args.brute)))
    rows.append(row("baseline: exact SQL scan `bit_count(hash # q)` (1 hash)", base["sql"], str(args.sql)))
    if hnsw:
        for k in ("old statement: LIMIT 10, ef_search 40", "LIMIT 100, ef_search 400"):
            rows.append(row(f"baseline: HNSW at {hnsw['size']:,} hashes, {k}", hnsw[k], str(args.hnsw_lookups)))
    m0, m1 = prod["mem_before"], prod["mem_after"]
    mem = [("what", "size"),
           ("in-memory index arrays (`PdqIndex.nbytes`)", gib(prod["index_bytes"])),
           ("bench process RSS / PSS before loading the index", f"{gib(m0['rss'])} / {gib(m0['pss'])}"),
           ("bench process RSS / PSS after loading the index", f"{gib(m1['rss'])} / {gib(m1['pss'])}"),
           ("index load growth (PSS)", gib(m1["pss"] - m0["pss"])),
           ("PostgreSQL `moderation_hashbankentry` (table + pkey + unique index)", gib(pg_bytes)),
           ("total for the bank (index PSS growth + PostgreSQL)", gib(m1["pss"] - m0["pss"] + pg_bytes))]
    times = [("step", "seconds"),
             ("generate hashes (numpy)", f"{gen_s:.1f}"),
             ("COPY into `moderation_hashbankentry` (with its pkey and unique index)",
              f"{loaded['load_s']:.1f}" + (f" (when loaded, {loaded['loaded_at']})" if loaded.get("reused") else "")),
             ("index load: binary COPY out + multi-index-hashing build", f"{prod['index_load_s']:.1f}")]
    if hnsw:
        times.append((f"baseline: HNSW build at {hnsw['size']:,} hashes (m=16, ef_construction=64; "
                      f"{gib(hnsw['index_bytes'])})", f"{hnsw['build_s']:.1f}"))
    per_lookup_ms = 1000 / prod["plain"][0] - 1000 / prod["raw_plain"][0]
    notes = [
        f"- **Product path vs the index alone**: a `bankmatch.match` call adds {per_lookup_ms:.1f} ms to the "
        "index search: one statement (the candidates' rows, entries newer than the index, the enabled banks' "
        "largest threshold) where the previous path made two (catch-up, then re-read of the candidates: "
        f"{prod['two_statements'][0]:,.0f} lookups/s in this run); an empty `SELECT 1` round trip took "
        f"{prod['round_trip_ms']:.2f} ms in this run. The moderate stage makes one call per asset for all of its "
        "hashes (a video's keyframes), so per stage this cost is paid once, not per hash.",
    ]
    if hnsw:
        scale = size / hnsw["size"]
        est_h = hnsw["build_s"] * scale * math.log(size) / math.log(hnsw["size"]) / 3600
        notes.append(
            f"- **Why not HNSW at {size:,}**: the build took {hnsw['build_s']:.0f} s for {hnsw['size']:,} hashes on "
            f"this machine; HNSW build work grows about as n·log n, so {size:,} would take about {est_h:.1f} h "
            f"(an estimate, not run) and {gib(hnsw['index_bytes'] * scale)} of index besides the table. Its answer is "
            "approximate (`ORDER BY … LIMIT`: at most LIMIT entries, ef_search candidates), while the multi-index "
            "hashing answer is exact by construction (pigeonhole) and its build took "
            f"{prod['index_load_s']:.0f} s including reading the table.")
    plain_ok = prod["plain"][0] >= GOAL_LPS and prod["plain"][1] >= GOAL_RECALL * prod["plain"][2]
    mem_ok = m1["pss"] - m0["pss"] + pg_bytes < GOAL_BYTES
    return "\n".join([
        f"`bench/banks.py --size {size}` — {machine_line()}; commit {commit()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Load average before / after: "
        f"{load_before} → {_load_avg()} (a shared 2-core machine: timings are noisy).",
        "",
        f"{size:,} PDQ hashes in one block bank (threshold {RADIUS}): {data['planted']:,} planted near-duplicates "
        f"of {args.known} known hashes ({args.per_known} each, distances 1..31; every fifth known hash's copies "
        "are of a dihedral variant, found only with the 8 variants) and random hashes. A lookup is one query "
        "hash (or its 8 variants) → every entry within 31 bits. Random queries matched "
        f"{prod['matched_random']} entries (none expected).",
        "",
        md_table(rows),
        "",
        md_table(mem),
        "",
        md_table(times),
        "",
        f"Goal (≥ {GOAL_LPS:.0f} lookups/s, recall ≥ {GOAL_RECALL}, < 8 GB): lookups and recall "
        f"{'met' if plain_ok else 'NOT met'} on the product path (the index alone: "
        f"{prod['raw_plain'][0]:,.0f} lookups/s), memory {'met' if mem_ok else 'NOT met'} at {size:,}.",
        "",
        *notes,
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--known", type=int, default=1000, help="query hashes with planted near-duplicates")
    p.add_argument("--per-known", type=int, default=10)
    p.add_argument("--dihedral-lookups", type=int, default=300)
    p.add_argument("--brute", type=int, default=30, help="brute-force baseline lookups")
    p.add_argument("--sql", type=int, default=3, help="exact SQL scan baseline lookups")
    p.add_argument("--hnsw-size", type=int, default=100_000, help="0: skip the HNSW baseline")
    p.add_argument("--hnsw-lookups", type=int, default=200)
    p.add_argument("--seed", type=int, default=20)
    p.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    args = p.parse_args(argv)
    load_before = _load_avg()
    prepare_database(DB_NAME)
    setup_django()
    t0 = time.perf_counter()
    data = generate(args.size, args.known, args.per_known, args.seed)
    gen_s = time.perf_counter() - t0
    loaded = load_bank(data, f"bench-{args.size}-{args.known}-{args.per_known}-{args.seed}")
    first_id = _sql("SELECT min(id) FROM moderation_hashbankentry")[0][0]
    pg_bytes = _sql("SELECT pg_total_relation_size('moderation_hashbankentry')")[0][0]
    print("product path …", flush=True)
    prod = bench_product(data, first_id, args.dihedral_lookups)
    print("baselines …", flush=True)
    base = bench_baselines(data, first_id, args.brute, args.sql)
    hnsw = None
    if args.hnsw_size:
        print(f"HNSW at {args.hnsw_size} …", flush=True)
        hnsw = bench_hnsw(data, min(args.hnsw_size, args.size), args.hnsw_lookups)
    text = report(args, data, loaded, prod, base, hnsw, pg_bytes, gen_s, load_before)
    print(text)
    if not args.no_doc:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
