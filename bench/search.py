"""Search benchmark: pgvector HNSW over real sentence embeddings (recall, latency, filters, build).

Run on the test profile's stack::

    MEDIAINTEL_PROFILE=test .venv/bin/python bench/search.py            # 100k rows (default)
    MEDIAINTEL_PROFILE=test .venv/bin/python bench/search.py --rows 1000000   # by hand: long

What it does:

* **corpus** — real English sentences, deduplicated, from text shipped on the machine: Debian
  documentation (``/usr/share/doc``: README/NEWS/changelogs, text/markdown/HTML, gzipped or not),
  manual pages (``/usr/share/man``, roff stripped), info manuals, Python package metadata
  (``site-packages/*/METADATA``) and standard-library docstrings. Shuffled with a fixed seed;
  ``--queries`` held-out sentences (never inserted) are the queries;
* **embeddings** — the bundled all-MiniLM-L6-v2 through ``workers.engines.text_embed``
  (exactly what the ``text_embed`` stage and the query worker use), cached as numpy files under
  ``var/bench-search/`` (resumable per block; a rerun embeds nothing);
* **database** — its own database ``mediaintel_searchbench`` on the test profile's PostgreSQL
  (created when missing, migrated with ``manage.py migrate``; the test database is never
  touched). Rows go into ``insights_textchunk`` (the production table) spread over N/100 assets,
  1 % of which are ``kind=audio`` (the 1 %-selective filter), loaded with COPY, the HNSW index
  (``textchunk_hnsw_cosine``, m=16, ef_construction=64) built afterwards and timed;
* **measurements** — recall@10 against exact search (brute force in numpy over the same
  vectors, float32), p50/p95 latency of the production query (``apps.search.services
  .semantic_sql``: iterative scan ``relaxed_order``) for ``hnsw.ef_search`` 40/100/200,
  unfiltered and with the 1 % filter (recall against the exact filtered top 10), and a halfvec
  variant (an expression index on ``embedding::halfvec(384)``, its build time and size);
* **query embedding round trip** — a real worker (``python -m workers --role gpu -c 1``, own
  Redis DB; ``MEDIAINTEL_DEVICE=cpu`` unless set) answering ``mediaintel.search.embed_query`` as the web process calls it: cold
  (first query, model load), warm (new texts), and cached (process LRU; Redis);
* prints tables and writes the ``## Search`` section of ``docs/benchmarks.md`` (other sections
  are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import hashlib
import html
import importlib
import inspect
import io
import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MEDIAINTEL_PROFILE", "test")

CACHE = ROOT / "var" / "bench-search"
from bench._db import bench_url, prepare_database  # noqa: E402
from bench._report import commit, machine_line, md_table, read_section, write_section  # noqa: E402

DB_NAME = "mediaintel_searchbench"
BLOCK = 4096
K = 10
GOAL_RECALL, GOAL_P95_MS = 0.95, 50.0

# --------------------------------------------------------------------------- corpus

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_ROFF = re.compile(r"\\f[BIRP]|\\\(..|\\[-e&|^]|\\s[-+]?\d|\\\*.|\\")
_TAG = re.compile(r"<[^>]+>")


def _read(path: Path) -> str:
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError):
        return ""
    if b"\0" in raw[:4096]:
        return ""
    return raw.decode("utf-8", "ignore")


def _roff(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            parts = line.split(None, 1)
            if parts and parts[0] in (".B", ".I", ".BR", ".IR", ".RB", ".BI", ".IB") and len(parts) > 1:
                lines.append(parts[1].replace('"', ""))
            elif parts and parts[0] in (".PP", ".P", ".LP", ".SH", ".SS", ".TP", ".IP", ".sp", ".br"):
                lines.append("")
            continue
        lines.append(_ROFF.sub("", line))
    return "\n".join(lines)


def _paragraph_sentences(text: str) -> Iterator[str]:
    for para in re.split(r"\n\s*\n", text):
        flat = " ".join(para.split())
        for s in _SENTENCE.split(flat):
            s = s.strip()
            if not 40 <= len(s) <= 300:
                continue
            letters = sum(c.isalpha() or c == " " for c in s)
            if letters < 0.85 * len(s) or s.count(" ") < 5 or "http" in s or "@" in s:
                continue
            yield s


def _sources() -> Iterator[tuple[str, str]]:
    """(origin, text) from every documentation source, in a fixed order."""
    for name in ("/usr/share/doc", "/usr/share/info", "/usr/share/man"):
        base = Path(name)
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            text = _read(path)
            if not text:
                continue
            if "/man/" in str(path):
                text = _roff(text)
            elif path.suffix in (".html", ".htm") or path.name.endswith(".html.gz"):
                text = html.unescape(_TAG.sub(" ", text))
            yield str(path), text
    import site

    for sp in site.getsitepackages():
        for meta in sorted(Path(sp).glob("*.dist-info/METADATA")):
            yield str(meta), meta.read_text("utf-8", "ignore").split("\n\n", 1)[-1]
    import pkgutil

    for mod in sorted(m.name for m in pkgutil.iter_modules() if m.module_finder.path.endswith("python3.11")
                      if hasattr(m.module_finder, "path")):
        with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
            m = importlib.import_module(mod)
            for obj in [m, *(getattr(m, a, None) for a in dir(m) if not a.startswith("_"))]:
                doc = inspect.getdoc(obj) if obj is not None else None
                if doc:
                    yield f"{mod}", doc


_DOCSTRING = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', re.S)


def _code_sources() -> Iterator[tuple[str, str]]:
    """Docstrings and comment blocks of every installed Python package (only needed past ~680k rows)."""
    import site

    for sp in site.getsitepackages():
        for path in sorted(Path(sp).rglob("*.py")):
            try:
                src = path.read_text("utf-8", "ignore")
            except OSError:
                continue
            for m in _DOCSTRING.finditer(src):
                yield str(path), m.group(1) or m.group(2) or ""
            comments = [ln.strip()[1:].strip() if ln.strip().startswith("#") else "" for ln in src.splitlines()]
            yield str(path), "\n".join(comments)


def _collect(sources: Iterator[tuple[str, str]], seen: set[str]) -> list[str]:
    out = []
    for _origin, text in sources:
        for s in _paragraph_sentences(text):
            key = hashlib.blake2b(s.lower().encode(), digest_size=8).hexdigest()
            if key not in seen:
                seen.add(key)
                out.append(s)
    return out


def corpus(n: int) -> list[str]:
    """``n`` distinct sentences (cached in var/bench-search), shuffled with a fixed seed.

    Documentation comes first; past it (≈ 680k sentences on a Debian host with this venv) the
    docstrings and comments of installed packages are appended, shuffled on their own, so the
    first rows (and their cached embeddings) stay the same whatever ``n``.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "corpus.jsonl"
    sentences: list[str] = []
    if path.exists():
        sentences = [json.loads(line) for line in path.read_text().splitlines()]
    extended = (CACHE / "corpus.extended").exists()
    if len(sentences) < n and not (extended and sentences):
        t0 = time.perf_counter()
        seen: set[str] = set()
        sentences = _collect(_sources(), seen)
        random.Random(20261129).shuffle(sentences)
        if len(sentences) < n:
            extra = _collect(_code_sources(), seen)
            random.Random(20261130).shuffle(extra)
            sentences += extra
            (CACHE / "corpus.extended").touch()
        path.write_text("".join(json.dumps(s) + "\n" for s in sentences))
        print(f"corpus: {len(sentences)} distinct sentences in {time.perf_counter() - t0:.0f}s", flush=True)
    if len(sentences) < n:
        raise SystemExit(f"only {len(sentences)} distinct sentences on this machine; ask for fewer rows")
    return sentences[:n]


# --------------------------------------------------------------------------- embeddings


class Int8Embedder:
    """The bundled MiniLM with int8 dynamic quantization of its linear layers (``--embedder int8``).

    ~2.5× faster on this CPU than the float32 engine, for building a 1M-sentence corpus in under an
    hour; its vectors are real sentence embeddings of the same model, at cosine ~0.94 to the
    float32 ones. Rows and queries of one run always come from the same embedder.
    """

    def __init__(self) -> None:
        import torch

        from workers.engines.text_embed import get_text_embedder

        base = get_text_embedder()
        self.model = torch.ao.quantization.quantize_dynamic(base._model, {torch.nn.Linear}, dtype=torch.qint8)

    def embed(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        return self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False).astype(np.float32)


EMBEDDER = "fp32"


def embeddings(texts: list[str]) -> np.ndarray:
    """MiniLM vectors of ``texts`` (float32, unit length), embedded once per block and cached."""
    from workers.engines.text_embed import get_text_embedder

    blocks = CACHE / ("blocks" if EMBEDDER == "fp32" else f"blocks-{EMBEDDER}")
    blocks.mkdir(parents=True, exist_ok=True)
    out = np.zeros((len(texts), 384), np.float32)
    engine: Any = None
    t0, done = time.perf_counter(), 0
    for start in range(0, len(texts), BLOCK):
        chunk = texts[start:start + BLOCK]
        digest = hashlib.sha256("\n".join(chunk).encode()).hexdigest()[:16]
        f = blocks / f"{start // BLOCK:05d}-{digest}.npy"
        if f.exists():
            out[start:start + len(chunk)] = np.load(f)
            continue
        engine = engine or (Int8Embedder() if EMBEDDER == "int8" else get_text_embedder())
        vecs = engine.embed(chunk, batch_size=16 if EMBEDDER == "int8" else 32)
        np.save(f, vecs)
        out[start:start + len(chunk)] = vecs
        done += len(chunk)
        rate = done / (time.perf_counter() - t0)
        print(f"embedded {start + len(chunk)}/{len(texts)} ({rate:.0f}/s)", flush=True)
    return out


# --------------------------------------------------------------------------- database


def setup_django(redis_db: int) -> None:
    from mediaintel import devstack

    broker = devstack.profile("test").broker_url.rsplit("/", 1)[0] + f"/{redis_db}"
    os.environ.update(DATABASE_URL=bench_url(DB_NAME), BROKER_URL=broker, REDIS_URL=broker,
                      DJANGO_SETTINGS_MODULE="mediaintel.settings", DEBUG="1", MEDIAINTEL_ENV="development",
                      MEDIAINTEL_THROTTLE_SEARCH="1000000/min", MEDIAINTEL_THROTTLE_SIMILAR="1000000/min",
                      MEDIAINTEL_THROTTLE_USER="1000000/min")
    import django

    django.setup()


def _sql(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(sql, params or [])
        return cur.fetchall() if cur.description else []


def load(rows: list[str], xv: np.ndarray) -> dict[str, Any]:
    """Assets (1 % audio) and one text chunk per sentence (COPY), then the HNSW index, timed."""
    from django.db import connection

    from mediacommon.catalog import spec_for

    n = len(rows)
    n_assets = max(100, n // 100)
    from django.conf import settings

    version = spec_for("text_embed", settings.MEDIAINTEL_STAGES).version
    _sql("TRUNCATE insights_textchunk, assets_mediaasset CASCADE")
    _sql("DROP INDEX IF EXISTS textchunk_hnsw_cosine")
    _sql("DROP INDEX IF EXISTS textchunk_hnsw_halfvec")
    t0 = time.perf_counter()
    raw = connection.cursor().cursor  # psycopg cursor under Django's
    from apps.assets.models import MediaAsset

    MediaAsset.objects.bulk_create(
        [MediaAsset(id=_uuid(i), kind="audio" if i % 100 == 7 else "video", size=1, mime_type="video/mp4",
                    sha256=hashlib.sha256(f"searchbench-{i}".encode()).hexdigest(), title=f"bench {i}",
                    storage_key=f"bench/{i}", status="ready", moderation_state="approved", source="command")
         for i in range(n_assets)], batch_size=2000)
    with raw.copy('COPY insights_textchunk (asset_id, stage, engine, engine_version, start, "end", source, text, '
                  "language, embedding) FROM STDIN") as cp:
        for j, (text, vec) in enumerate(zip(rows, xv, strict=True)):
            cp.write_row([str(_uuid(j % n_assets)), "text_embed", "sentence-transformers", version,
                          float(j % 100) * 10, float(j % 100) * 10 + 8, "transcript", text, "en",
                          "[" + ",".join(f"{x:.7g}" for x in vec) + "]"])
    connection.commit() if not connection.get_autocommit() else None
    load_s = time.perf_counter() - t0
    _sql("UPDATE insights_textchunk SET tsv = to_tsvector(mediaintel_ts_config(language), text)")
    _sql("VACUUM ANALYZE insights_textchunk")
    _sql("VACUUM ANALYZE assets_mediaasset")
    first = _sql("SELECT min(id) FROM insights_textchunk")[0][0]
    _sql("SET maintenance_work_mem = '2GB'")
    t0 = time.perf_counter()
    _sql("CREATE INDEX textchunk_hnsw_cosine ON insights_textchunk USING hnsw (embedding vector_cosine_ops) "
         "WITH (m = 16, ef_construction = 64)")
    build_s = time.perf_counter() - t0
    size = _sql("SELECT pg_relation_size('textchunk_hnsw_cosine'), pg_table_size('insights_textchunk')")[0]
    workers = _sql("SHOW max_parallel_maintenance_workers")[0][0]
    return {"rows": n, "assets": n_assets, "first_id": first, "load_s": load_s, "build_s": build_s,
            "index_bytes": size[0], "table_bytes": size[1], "parallel_workers": workers,
            "audio_assets": {i for i in range(n_assets) if i % 100 == 7}}


def _uuid(i: int) -> Any:
    import uuid

    return uuid.UUID(int=(0x5EA4C4 << 96) + i)


def exact_topk(qv: np.ndarray, xv: np.ndarray, mask: np.ndarray | None = None, k: int = K) -> np.ndarray:
    """Exact cosine top-k (vectors are unit length: cosine = dot product), float32, in numpy."""
    out = np.zeros((len(qv), k), np.int64)
    for start in range(0, len(qv), 32):
        sims = qv[start:start + 32] @ xv.T
        if mask is not None:
            sims[:, ~mask] = -np.inf
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
        out[start:start + 32] = np.take_along_axis(part, order, axis=1)
    return out


def dist(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    return {"p50": statistics.median(v), "p95": v[min(len(v) - 1, math.ceil(0.95 * len(v)) - 1)],
            "mean": statistics.fmean(v)}


def describe_plan(plan: str) -> str:
    """The access path of an EXPLAIN text, in a few words."""
    if "hnsw" in plan:
        return "HNSW index scan"
    scans = []
    for m in re.finditer(r"(Seq Scan|Parallel Seq Scan|Index Scan|Index Only Scan|Bitmap Index Scan)"
                         r"(?: using (\w+))? on (\w+)", plan):
        what = m.group(1) + (f" ({m.group(2)})" if m.group(2) else "") + f" on {m.group(3)}"
        if what not in scans:
            scans.append(what)
    return "exact: " + ", ".join(scans) + " + sort"


def measure(qv: np.ndarray, truth: np.ndarray, first_id: int, *, ef: int, filters: Any = None,
            halfvec: bool = False, exact: bool = False) -> dict[str, Any]:
    """Recall@10 and latency of the production kNN query for every query vector."""
    from django.db import connection, transaction

    from apps.insights import knn
    from apps.search import query
    from apps.search.filters import Filters

    f = filters or Filters()
    if halfvec:
        sql = ("SELECT c.id, c.embedding::halfvec(384) <=> %s::halfvec(384) AS d FROM insights_textchunk c "
               "ORDER BY c.embedding::halfvec(384) <=> %s::halfvec(384) LIMIT %s")
    else:
        sql, fparams = query.semantic_sql(f, None, K)
    lit0 = query.vector_literal(qv[0])

    def exact_now() -> bool:  # forced, or the production choice for this filter (timed with the query)
        return exact or (not halfvec and query.exact_scan(f, None))

    with transaction.atomic():
        knn.hnsw_session(ef, query.MAX_SCAN_TUPLES)
        with connection.cursor() as cur:
            if exact_now():
                cur.execute("SET LOCAL enable_indexscan = off")
            cur.execute("EXPLAIN " + sql, [lit0, lit0, K] if halfvec else [lit0, *fparams, lit0, K])
            plan_text = " ".join(r[0] for r in cur.fetchall())
    plan = describe_plan(plan_text)
    lat, recalls = [], []
    for rnd in range(2):  # round 0 warms the caches; round 1 is measured
        lat, recalls = [], []
        for i, q in enumerate(qv):
            lit = query.vector_literal(q)
            params = [lit, lit, K] if halfvec else [lit, *fparams, lit, K]
            t0 = time.perf_counter()
            with transaction.atomic():
                knn.hnsw_session(ef, query.MAX_SCAN_TUPLES)
                with connection.cursor() as cur:
                    if exact_now():
                        cur.execute("SET LOCAL enable_indexscan = off")
                    cur.execute(sql, params)
                    ids = [r[0] for r in cur.fetchall()]
            lat.append((time.perf_counter() - t0) * 1000)
            got = {x - first_id for x in ids}
            recalls.append(len(got & set(truth[i].tolist())) / K)
        if rnd == 0 and exact:
            break
    return {"ef": ef, "recall": statistics.fmean(recalls), "min_recall": min(recalls), "plan": plan, **dist(lat)}


# --------------------------------------------------------------------------- query embedding round trip


def roundtrip(queries: list[str], redis_db: int) -> dict[str, Any]:
    """A real worker answers mediaintel.search.embed_query as the web process asks it."""
    import redis
    from django.conf import settings

    from apps.search import remote
    from workers.engines.text_embed import get_text_embedder

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    log = CACHE / "worker.log"
    env = {**os.environ, "MEDIAINTEL_DEVICE": os.environ.get("MEDIAINTEL_DEVICE", "cpu")}
    proc = subprocess.Popen([sys.executable, "-m", "workers", "--role", "gpu", "-c", "1", "--name", "searchbench@%h"],
                            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t0 = time.perf_counter()
        cold = None
        while time.perf_counter() - t0 < 180:
            try:
                cold = remote.embed_query("warming up the query worker", timeout=30).ms
                break
            except remote.RemoteUnavailable as e:
                if e.code != "workers_unavailable":
                    raise
                continue
        if cold is None:
            raise RuntimeError(f"the worker never answered; see {log}")
        warm = [remote.embed_query(q, timeout=30).ms for q in queries]
        memory = [remote.embed_query(q).ms for q in queries]
        remote.clear_memory_cache()
        cached = [remote.embed_query(q) for q in queries]
        assert all(c.cached == "redis" for c in cached)
        engine = get_text_embedder()
        engine.embed(["warm"])
        local = []
        for q in queries:
            t = time.perf_counter()
            engine.embed([q])
            local.append((time.perf_counter() - t) * 1000)
        return {"cold_ms": cold, "warm": dist(warm), "memory": dist(memory), "redis": dist([c.ms for c in cached]),
                "in_process": dist(local), "n": len(queries)}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- report


def write_subsection(text: str, rows: int) -> None:
    """Replace (or add) the ``### N rows`` subsection of ``## Search``; the other sizes are kept."""
    subs = dict(re.findall(r"^### ([\d,]+) rows\n(.*?)(?=^### |\Z)", read_section("Search"), re.S | re.M))
    subs[f"{rows:,}"] = "\n" + text.strip() + "\n\n"
    ordered = sorted(subs.items(), key=lambda kv: int(kv[0].replace(",", "")))
    write_section("Search", "".join(f"### {k} rows\n{v}" for k, v in ordered))


# --------------------------------------------------------------------------- entry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--embedder", choices=("fp32", "int8"), default="fp32",
                    help="fp32: the text_embed engine as deployed; int8: the same model quantized (for --rows 1000000)")
    ap.add_argument("--embed-only", action="store_true", help="build the corpus and embedding cache, then stop")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--no-roundtrip", action="store_true", help="skip the worker round-trip measurement")
    ap.add_argument("--redis-db", type=int, default=7, help="Redis DB of the benchmark's broker (flushed)")
    a = ap.parse_args(argv)
    global EMBEDDER
    EMBEDDER = a.embedder
    texts = corpus(a.rows + a.queries)
    queries, rows = texts[: a.queries], texts[a.queries:]
    qv = embeddings(queries)
    xv = embeddings(rows)
    if a.embed_only:
        print(f"embeddings ready: {len(rows)} rows, {len(queries)} queries")
        return 0
    return run(a, rows, xv, queries, qv)


def run(a: Any, rows: list[str], xv: np.ndarray, queries: list[str], qv: np.ndarray) -> int:
    load_before = os.getloadavg()[0]
    started = dt.datetime.now(dt.UTC)
    prepare_database(DB_NAME)
    setup_django(a.redis_db)
    from apps.search.filters import Filters
    print(f"loading {len(rows)} rows into {DB_NAME} …", flush=True)
    info = load(rows, xv)
    print(f"loaded in {info['load_s']:.0f}s; HNSW built in {info['build_s']:.1f}s "
          f"({info['index_bytes'] / 1024**2:.0f} MiB)", flush=True)
    n_assets = info["assets"]
    audio_rows = np.array([(j % n_assets) in info["audio_assets"] for j in range(len(rows))])
    truth = exact_topk(qv, xv)
    truth_f = exact_topk(qv, xv, audio_rows)
    audio = Filters(kinds=("audio",))
    results: dict[str, list[dict[str, Any]]] = {"unfiltered": [], "filtered": [], "halfvec": []}
    for ef in (40, 100, 200):
        results["unfiltered"].append(measure(qv, truth, info["first_id"], ef=ef))
        results["filtered"].append(measure(qv, truth_f, info["first_id"], ef=ef, filters=audio))
        print(f"ef_search={ef}: {results['unfiltered'][-1]} / filtered {results['filtered'][-1]}", flush=True)
    n_exact = min(20, len(qv))
    exact = measure(qv[:n_exact], truth[:n_exact], info["first_id"], ef=40, exact=True)
    exact_f = measure(qv[:n_exact], truth_f[:n_exact], info["first_id"], ef=40, filters=audio, exact=True)
    t0 = time.perf_counter()
    _sql("CREATE INDEX textchunk_hnsw_halfvec ON insights_textchunk USING hnsw "
         "((embedding::halfvec(384)) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)")
    half_build = time.perf_counter() - t0
    half_bytes = _sql("SELECT pg_relation_size('textchunk_hnsw_halfvec')")[0][0]
    _sql("DROP INDEX textchunk_hnsw_cosine")  # so the halfvec queries cannot use the full-precision graph
    for ef in (40, 100, 200):
        results["halfvec"].append(measure(qv, truth, info["first_id"], ef=ef, halfvec=True))
        print(f"halfvec ef_search={ef}: {results['halfvec'][-1]}", flush=True)
    _sql("DROP INDEX textchunk_hnsw_halfvec")  # the bench database is left without a vector index
    rt = None if a.no_roundtrip else roundtrip(queries[:30], a.redis_db)
    pg = _sql("SELECT current_setting('server_version'), (SELECT extversion FROM pg_extension "
              "WHERE extname = 'vector'), current_setting('shared_buffers')")[0]
    text = report(a, info, results, exact, exact_f, half_build, half_bytes, rt, pg, started, load_before,
                  os.getloadavg()[0], len(qv))
    print(text)
    if not a.no_write:
        write_subsection(text, info["rows"])
    return 0


def _ms(x: float) -> str:
    return f"{x:.1f}"


def report(a: Any, info: dict[str, Any], results: dict[str, list[dict[str, Any]]], exact: dict[str, Any],
           exact_f: dict[str, Any], half_build: float, half_bytes: int, rt: dict[str, Any] | None,
           pg: tuple[Any, ...], started: dt.datetime, load_before: float, load_after: float, nq: int) -> str:
    n = info["rows"]
    blocks = sorted((CACHE / ("blocks" if EMBEDDER == "fp32" else f"blocks-{EMBEDDER}")).glob("*.npy"),
                    key=lambda p: p.stat().st_mtime)
    if len(blocks) > 2:
        span = blocks[-1].stat().st_mtime - blocks[0].stat().st_mtime
        info["embed_rate"] = (len(blocks) - 1) * BLOCK / span if span > 0 else None
    flags = f" --embedder {EMBEDDER}" if EMBEDDER != "fp32" else ""
    head = (f"`bench/search.py --rows {n}{flags}` — {started:%Y-%m-%d %H:%M} UTC, commit `{commit()}`; {machine_line()}. "
            f"PostgreSQL {pg[0]} with pgvector {pg[1]} (test profile's embedded server, shared_buffers {pg[2]}, "
            f"fsync off), own database `{DB_NAME}`. Load average {load_before:.1f} → {load_after:.1f} "
            "(the host is shared with other jobs).")
    corpus_txt = (f"Data: {n:,} distinct real English sentences (Debian documentation, manual and info pages, "
                  f"Python package metadata, standard-library and installed packages' docstrings), embedded with "
                  + ("the bundled all-MiniLM-L6-v2 (384-d, unit length — the `text_embed` engine)" if EMBEDDER == "fp32"
                     else "the bundled all-MiniLM-L6-v2 with int8 dynamic quantization of its linear layers "
                     "(`--embedder int8`: ~2.5× faster on this CPU, which makes a 1M-sentence corpus an hour's work; "
                     "real sentence vectors of the same model, cosine ~0.94 to the float32 engine's; rows and "
                     "queries from the same embedder)")
                  + f", stored as `insights_textchunk` "
                  f"rows over {info['assets']:,} assets; {nq} held-out sentences are the queries. Recall@10 is "
                  "measured against exact top-10 (numpy, float32). Latency is the production query "
                  "(`apps.search.query.semantic_sql`, `hnsw.iterative_scan = relaxed_order`, "
                  "materialised CTE re-sorted, `LIMIT 10`) from a Django connection, one transaction each, "
                  "client side, after a warm-up round. The 1 % filter is `kind = audio` (1 % of the assets, so "
                  "1 % of the rows), joined to `assets_mediaasset` like the API's filters.")
    rows = [("query", "ef_search", "plan", "recall@10", "min recall", "p50 ms", "p95 ms", "mean ms")]
    for label, key in (("vector(384), unfiltered", "unfiltered"), ("vector(384), 1 % filter", "filtered"),
                       ("halfvec(384), unfiltered", "halfvec")):
        for r in results[key]:
            rows.append((label, str(r["ef"]), r["plan"], f"{r['recall']:.3f}", f"{r['min_recall']:.1f}",
                         _ms(r["p50"]), _ms(r["p95"]), _ms(r["mean"])))
    for label, r in (("exact, unfiltered", exact), ("exact, 1 % filter", exact_f)):
        rows.append((label, "—", r["plan"], f"{r['recall']:.3f}", "", _ms(r["p50"]), _ms(r["p95"]), _ms(r["mean"])))
    build = [("index", "build s", "size MiB", "rows"),
             ("vector(384) HNSW m=16 ef_construction=64", f"{info['build_s']:.1f}",
              f"{info['index_bytes'] / 1024**2:.0f}", f"{n:,}"),
             ("halfvec(384) HNSW (expression index)", f"{half_build:.1f}", f"{half_bytes / 1024**2:.0f}", f"{n:,}"),
             ("(table, for scale)", "", f"{info['table_bytes'] / 1024**2:.0f}", "")]
    from apps.search.query import EF_SEARCH

    def meets(r: dict[str, Any]) -> bool:
        return r["recall"] >= GOAL_RECALL and r["p95"] <= GOAL_P95_MS

    filtered = {r["ef"]: r for r in results["filtered"]}
    ok = [(r, filtered[r["ef"]]) for r in results["unfiltered"]
          if r["ef"] in filtered and meets(r) and meets(filtered[r["ef"]])]
    default = next((r for r in results["unfiltered"] if r["ef"] == EF_SEARCH), None)
    goal = (f"**Goal** (recall@10 ≥ {GOAL_RECALL} with p95 ≤ {GOAL_P95_MS:g} ms at 1M rows, filtered queries "
            f"included), measured at {n:,} rows: "
            + ("; ".join(f"ef_search={u['ef']} meets it unfiltered (recall {u['recall']:.3f}, p95 {u['p95']:.1f} ms) "
                         f"and with the 1 % filter (recall {f['recall']:.3f}, p95 {f['p95']:.1f} ms)"
                         for u, f in ok) if ok else "not met at any ef_search for both query kinds")
            + (f"; the search default (`hnsw.ef_search` = max({EF_SEARCH}, candidate pool)) gives recall "
               f"{default['recall']:.3f} at p95 {default['p95']:.1f} ms unfiltered"
               + (f", {filtered[EF_SEARCH]['recall']:.3f} at p95 {filtered[EF_SEARCH]['p95']:.1f} ms filtered"
                  if EF_SEARCH in filtered else "") + "." if default else "."))
    if n < 1_000_000:
        goal += (" The 1M run (`--rows 1000000 --embedder int8`, by hand: about an hour to embed, then the "
                 "index builds) has its own subsection.")
    notes = ("Reading the numbers: a filtered query first asks the planner how many chunks the filter leaves "
             "(`EXPLAIN`, no rows read; timed with the query). At most `MEDIAINTEL_SEARCH_EXACT_MAX_ROWS` (20,000): "
             "the few matching rows are fetched by B-tree and ranked exactly (*plan* `exact: …`, recall 1.0); "
             "more: the HNSW graph is walked with the filter applied as it goes (iterative scan until the page "
             "is full). Either way the page is full. Walking the graph under a 1 % filter at 1M rows cost ~110 ms "
             "p95 at recall 0.94 — why selective filters are ranked exactly. halfvec halves the index and builds "
             "faster at about the same recall; the table keeps `vector(384)` (the expression index is shown for "
             "comparison and dropped again).")
    out = [head, "", corpus_txt, "", md_table(rows), "", md_table(build), "", goal, "", notes]
    if rt:
        rts = [("query vector", "n", "p50 ms", "p95 ms"),
               ("worker round trip, first call (model load)", "1", _ms(rt["cold_ms"]), ""),
               ("worker round trip, warm (send → BLPOP reply)", str(rt["n"]), _ms(rt["warm"]["p50"]),
                _ms(rt["warm"]["p95"])),
               ("cached in Redis (new web process)", str(rt["n"]), _ms(rt["redis"]["p50"]), _ms(rt["redis"]["p95"])),
               ("cached in the process (LRU)", str(rt["n"]), f"{rt['memory']['p50']:.3f}",
                f"{rt['memory']['p95']:.3f}"),
               ("(embedding in-process, for comparison)", str(rt["n"]), _ms(rt["in_process"]["p50"]),
                _ms(rt["in_process"]["p95"]))]
        out += ["", "Query embedding (the web process never imports torch: a worker on the `search` queue embeds "
                "the query, `mediaintel.search.embed_query`, and answers on a Redis reply list; one worker "
                "`--role gpu -c 1` on this host, idle queue):", "", md_table(rts), "",
                "A query whose worker does not answer within `MEDIAINTEL_SEARCH_EMBED_TIMEOUT` (default 3 s) "
                "is served by full-text search alone with `degraded: true`. Queries have the `search` queue to "
                "themselves (no pipeline stage runs there): `make run` starts a `--role search -c 1` worker, so "
                "a backlog of ingestion never delays them."]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
