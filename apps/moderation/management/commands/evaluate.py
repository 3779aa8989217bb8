"""``manage.py evaluate DATASET --out DIR [--generate] [--compare RUN] [--policy FILE]``.

Runs the pipeline's engines in-process over a labelled dataset (see workers/evaluation/dataset.py
for the manifest) and writes ``results.json``, ``report.html`` and, when thresholds can be
suggested, ``policy-draft.yaml`` into DIR; the run is also recorded (``EvaluationRun``) for the
console's list of runs. The engines need the worker image (numpy, torch): this is a
worker-image command, refused with a message where numpy is missing; the evaluation package is
imported only when the command runs, never by the web code (the one ``ignore_imports`` entry of the
import contracts in pyproject.toml). It lives in the moderation app because it measures and drafts
moderation policy; it records runs through ``apps.pipeline.evaluations``.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.urls import reverse

from apps.moderation import policy_io
from apps.moderation.services import ModerationError
from apps.moderation.taxonomy import DEFAULT_RULES
from apps.pipeline.evaluations import record_run


def rate(value: str) -> float:
    v = float(value)
    if not 0 < v <= 1:  # also refuses nan
        raise ValueError(value)
    return v


def seconds(value: str) -> float:
    v = float(value)
    if not v > 0 or math.isinf(v):
        raise ValueError(value)
    return v


class Command(BaseCommand):
    help = "Measure the engines on a labelled dataset: HTML report, JSON of every number, draft policy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="folder holding manifest.json and the media")
        parser.add_argument("--out", required=True, help="folder for results.json, report.html, policy-draft.yaml")
        parser.add_argument("--generate", action="store_true",
                            help="first write the shipped, generated dataset into DATASET")
        parser.add_argument("--compare", metavar="RUN", help="an earlier run's folder: the report shows deltas")
        parser.add_argument("--policy", metavar="FILE",
                            help="policy YAML whose weights and thresholds apply (default: the built-in rules)")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--target-precision", type=rate, default=None,
                            help="suggest per category the threshold reaching this precision (default 0.9)")
        target.add_argument("--target-recall", type=rate, default=None,
                            help="suggest per category the threshold reaching this recall")
        parser.add_argument("--cut-tolerance", type=seconds, default=0.5, help="seconds (default 0.5)")
        parser.add_argument("--iou", type=rate, default=0.5, help="box overlap for a match (default 0.5)")
        parser.add_argument("--k", type=int, default=5, help="tags counted for recall@k (default 5)")

    def handle(self, *args: Any, **o: Any) -> None:
        if o["k"] < 1:
            raise CommandError("--k must be at least 1")
        try:
            importlib.import_module("numpy")
        except ImportError:
            raise CommandError("evaluate runs the engines: run it where the workers run (numpy and torch "
                               "are not installed here)") from None
        from workers.evaluation import dataset as ds
        from workers.evaluation import output, run, shipped
        from workers.evaluation.engines import PipelineEngines

        rules, policy_name = dict(DEFAULT_RULES), "default"
        if o["policy"]:
            try:
                parsed = policy_io.parse_yaml(Path(o["policy"]).read_bytes())
            except OSError as e:
                raise CommandError(f"cannot read the policy {o['policy']}: {e.strerror or e}") from None
            except ModerationError as e:
                raise CommandError(f"{o['policy']}: {e}") from None
            rules, policy_name = parsed.rules, parsed.name
        other = None
        if o["compare"]:
            try:
                other = output.load_results(o["compare"])
            except output.RunError as e:
                raise CommandError(str(e)) from None
        if o["generate"]:
            try:
                shipped.generate(o["dataset"])
            except OSError as e:
                raise CommandError(f"cannot write the dataset to {o['dataset']}: {e.strerror or e}") from None
        try:
            data = ds.load(o["dataset"])
        except ds.DatasetError as e:
            raise CommandError(str(e)) from None
        target_p = o["target_precision"] if o["target_recall"] is None else None
        if target_p is None and o["target_recall"] is None:
            target_p = 0.9
        self.stdout.write(f"evaluating {len(data.items)} files of {data.name} ...")
        results = run.evaluate(data, PipelineEngines(device=settings.MEDIAINTEL_DEVICE), rules=rules,
                               cut_tolerance=o["cut_tolerance"], iou=o["iou"], k=o["k"],
                               target_precision=target_p, target_recall=o["target_recall"],
                               progress=lambda line: self.stdout.write(f"  {line}"))
        try:
            written = output.write(o["out"], results, base_rules=rules, policy_name=policy_name, other=other,
                                   other_label=o["compare"] or "")
        except output.RunError as e:
            raise CommandError(str(e)) from None
        self.stdout.write(summary(results))
        for note in written.notes:
            self.stdout.write(f"  policy: {note}")
        self.stdout.write(f"report  {written.report}\nresults {written.results}")
        try:
            kept = record_run(written.results, report=written.report, out_dir=Path(o["out"]), policy=policy_name,
                              compared_to=o["compare"])
        except DatabaseError as e:  # the files are written; only the console's list misses this run
            self.stderr.write(f"the run was not recorded for the console (database: {e})")
        else:
            self.stdout.write(f"console {reverse('console-evaluation-report', args=[kept.pk])}")
        if written.draft:
            self.stdout.write(f"draft   {written.draft}  (import with: manage.py policy import {written.draft})")


def summary(r: dict[str, Any]) -> str:
    """A few headline numbers for the console."""
    def f(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}"

    lines = []
    if r.get("speech"):
        lines.append(f"speech   WER {f(r['speech']['wer'])}  CER {f(r['speech']['cer'])}")
    if r.get("ocr"):
        lines.append(f"ocr      WER {f(r['ocr']['wer'])}  CER {f(r['ocr']['cer'])}")
    if r.get("language"):
        lines.append(f"language accuracy {f(r['language']['accuracy'])}")
    if r.get("scenes"):
        s = r["scenes"]
        lines.append(f"scenes   P {f(s['precision'])}  R {f(s['recall'])}  F1 {f(s['f1'])}")
    if r.get("detection"):
        d = r["detection"]
        lines.append(f"objects  P {f(d['precision'])}  R {f(d['recall'])}  mAP@{d['iou']} {f(d['map'])}")
    if r.get("tags"):
        t = r["tags"]
        key = f"recall_at_{t['k']}"
        lines.append(f"tags     recall@{t['k']} {f(t[key])}")
    for c, e in (r.get("moderation") or {}).items():
        a = e["at_review"]
        lines.append(f"moderation {c:<24} P {f(a['precision'])}  R {f(a['recall'])}  F1 {f(a['f1'])}")
    for section, reason in (r.get("skipped") or {}).items():
        lines.append(f"skipped  {section}: {reason}")
    return "\n".join(lines)
