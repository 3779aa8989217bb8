"""Every management command answers bad arguments with a one-line message naming the problem and a
non-zero exit, never a traceback.

Each case runs ``python manage.py …`` as a real subprocess against the test stack (PostgreSQL and
Redis), as an operator would; what a case needs in the database (a bank, a user, the default
policy) is committed first.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

MISSING_DIR = "/nonexistent-mediaintel-dir"
NO_SUCH_UUID = str(uuid.UUID(int=0x5EED))
HUGE_ID = "9" * 25  # beyond any integer column
BINARY_FILE = str(Path(sys.executable).resolve())  # an executable: bytes that are not UTF-8 text


def a_bank() -> None:
    from apps.moderation.models import HashBank

    HashBank.objects.create(name="known-bank")


HASHED_ASSET = str(uuid.UUID(int=0xA55E7))


def an_asset_with_a_hash() -> None:
    from apps.assets.models import MediaAsset
    from apps.insights.models import PerceptualHash

    a_bank()
    asset = MediaAsset.objects.create(id=HASHED_ASSET, kind="image", sha256="ab" * 32, size=10, mime_type="image/png",
                                      storage_key="k/hashed", status="ready")
    PerceptualHash.objects.create(asset=asset, stage="hash", engine="pdq", engine_version="pdq@1", hash="01" * 128,
                                  quality=90)


def a_user() -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create(username="known-user")


def the_default_policy() -> None:
    from apps.moderation.models import Policy, PolicyVersion
    from apps.moderation.taxonomy import DEFAULT_RULES

    policy, _ = Policy.objects.get_or_create(name="default")
    if policy.active_version_id is None:
        policy.active_version = PolicyVersion.objects.create(policy=policy, number=1, rules=DEFAULT_RULES)
        policy.save()


@dataclass
class Case:
    args: list[str]
    message: str  # a regular expression one output line must match (case-insensitive)
    setup: Callable[[], None] | None = None
    id: str = field(default="")


CASES = [
    # bank
    Case(["bank", "list", "--bogus"], r"unrecognized arguments: --bogus", id="bank-unknown-option"),
    Case(["bank", "add-asset"], r"required: name, asset", id="bank-missing-argument"),
    Case(["bank", "add-asset", "known-bank", "not-a-uuid"], r"not an asset id.*not-a-uuid", a_bank,
         id="bank-malformed-asset-id"),
    Case(["bank", "add-asset", "known-bank", NO_SUCH_UUID], rf"no such asset: {NO_SUCH_UUID}", a_bank,
         id="bank-nonexistent-asset"),
    Case(["bank", "add-asset", "known-bank", HASHED_ASSET, "--label", "x" * 201], r"--label is at most 200 characters",
         an_asset_with_a_hash, id="bank-label-too-long"),
    Case(["bank", "create", "b2", "--threshold", "999"], r"threshold is 0\.\.128", id="bank-threshold-out-of-range"),
    Case(["bank", "create", "b" * 101], r"a bank name is 1 to 100 characters", id="bank-name-too-long"),
    Case(["bank", "create", " "], r"a bank name is 1 to 100 characters", id="bank-name-empty"),
    Case(["bank", "import", "known-bank", BINARY_FILE], rf"cannot read {BINARY_FILE}: not UTF-8 text", a_bank,
         id="bank-import-binary-file"),
    Case(["bank", "import", "known-bank", f"{MISSING_DIR}/hashes.csv"], rf"cannot read {MISSING_DIR}/hashes\.csv",
         a_bank, id="bank-import-missing-file"),
    Case(["bank", "export", "known-bank", f"{MISSING_DIR}/out.csv"], rf"cannot write {MISSING_DIR}/out\.csv",
         a_bank, id="bank-export-missing-directory"),
    # policy
    Case(["policy", "frobnicate"], r"invalid choice: 'frobnicate'", id="policy-unknown-action"),
    Case(["policy", "--name", "nosuch", "show"], r"policy 'nosuch' does not exist", id="policy-nonexistent-name"),
    Case(["policy", "export", "--version", "99"], r"policy 'default' has no version 99", the_default_policy,
         id="policy-nonexistent-version"),
    Case(["policy", "import", f"{MISSING_DIR}/p.yaml"], rf"cannot read {MISSING_DIR}/p\.yaml",
         id="policy-import-missing-file"),
    Case(["policy", "import", BINARY_FILE], rf"cannot read {BINARY_FILE}: not UTF-8 text",
         id="policy-import-binary-file"),
    Case(["policy", "export", f"{MISSING_DIR}/p.yaml"], rf"cannot write {MISSING_DIR}/p\.yaml", the_default_policy,
         id="policy-export-missing-directory"),
    # gc
    Case(["gc", "--bogus"], r"unrecognized arguments: --bogus", id="gc-unknown-option"),
    Case(["gc", "--min-age", "-1"], r"--min-age must be zero or more", id="gc-negative-min-age"),
    Case(["gc", "--min-age", "nan"], r"--min-age must be a finite number", id="gc-nan-min-age"),
    Case(["gc", "--min-age", "soon"], r"argument --min-age: invalid float value: 'soon'", id="gc-malformed-min-age"),
    # ingest
    Case(["ingest"], r"required: paths", id="ingest-missing-path"),
    Case(["ingest", "--kind", "hologram", "x"], r"argument --kind: invalid choice: 'hologram'", id="ingest-bad-kind"),
    Case(["ingest", f"{MISSING_DIR}/clip.mp4"], r"1 file\(s\) rejected", id="ingest-missing-file"),
    Case(["ingest", "/dev/null"], r"/dev/null .*not a regular file", id="ingest-not-a-regular-file"),
    Case(["ingest", "--timeout", "-5", "--wait", f"{MISSING_DIR}/clip.mp4"], r"--timeout must be more than zero",
         id="ingest-negative-timeout"),
    # demo (every case fails before any media is generated)
    # evaluate (every case fails before any engine loads)
    Case(["evaluate"], r"the following arguments are required: dataset, --out", id="evaluate-no-arguments"),
    Case(["evaluate", MISSING_DIR, "--out", f"{MISSING_DIR}/run"], r"no manifest", id="evaluate-no-dataset"),
    Case(["evaluate", MISSING_DIR, "--out", "/tmp/run", "--target-precision", "2"],
         r"argument --target-precision: invalid rate value: '2'", id="evaluate-target-out-of-range"),
    Case(["evaluate", MISSING_DIR, "--out", "/tmp/run", "--cut-tolerance", "nan"],
         r"argument --cut-tolerance: invalid seconds value: 'nan'", id="evaluate-nan-tolerance"),
    Case(["evaluate", MISSING_DIR, "--out", "/tmp/run", "--compare", MISSING_DIR], r"not an evaluation run",
         id="evaluate-compare-not-a-run"),
    Case(["evaluate", MISSING_DIR, "--out", "/tmp/run", "--policy", f"{MISSING_DIR}/p.yaml"],
         r"cannot read the policy", id="evaluate-missing-policy"),
    Case(["evaluate", "/dev/null/set", "--out", "/tmp/run", "--generate"], r"cannot write the dataset to /dev/null/set",
         id="evaluate-generate-unusable-dir"),
    Case(["demo", "--bogus"], r"unrecognized arguments: --bogus", id="demo-unknown-option"),
    Case(["demo", "--timeout", "soon"], r"argument --timeout: invalid float value: 'soon'",
         id="demo-malformed-timeout"),
    Case(["demo", "--wait", "--timeout", "0"], r"--timeout must be more than zero", id="demo-zero-timeout"),
    Case(["demo", "--dir", "/dev/null/demo"], r"cannot write the demo set to /dev/null/demo", id="demo-unusable-dir"),
    # reprocess
    Case(["reprocess"], r"one of the arguments --missing .* is required", id="reprocess-missing-mode"),
    Case(["reprocess", "--all", "--stage", "dance"], r"argument --stage: invalid choice: 'dance'",
         id="reprocess-bad-stage"),
    Case(["reprocess", "--all", "--asset", "not-a-uuid"], r"not an asset id \(a UUID\): not-a-uuid",
         id="reprocess-malformed-asset-id"),
    Case(["reprocess", "--all", "--asset", NO_SUCH_UUID], rf"no such asset: {NO_SUCH_UUID}",
         id="reprocess-nonexistent-asset"),
    # dlq
    Case(["dlq", "show"], r"required: id", id="dlq-missing-id"),
    Case(["dlq", "show", "abc"], r"argument id: invalid int value: 'abc'", id="dlq-malformed-id"),
    Case(["dlq", "show", "424242"], r"no dead letter #424242", id="dlq-nonexistent-id"),
    Case(["dlq", "discard", HUGE_ID], rf"no dead letter #{HUGE_ID}", id="dlq-out-of-range-id"),
    Case(["dlq", "replay"], r"name dead letter ids or use --all", id="dlq-replay-nothing"),
    # pipeline
    Case(["pipeline"], r"required: action", id="pipeline-missing-action"),
    Case(["pipeline", "explode"], r"invalid choice: 'explode'", id="pipeline-unknown-action"),
    Case(["pipeline", "status", "--bogus"], r"unrecognized arguments: --bogus", id="pipeline-unknown-option"),
    # audit
    Case(["audit"], r"required: action", id="audit-missing-action"),
    Case(["audit", "rewrite"], r"invalid choice: 'rewrite'", id="audit-unknown-action"),
    # tokens
    Case(["tokens", "revoke", "abc"], r"a token id is a number .*not 'abc'", id="tokens-malformed-id"),
    Case(["tokens", "revoke", "424242"], r"no token with id 424242", id="tokens-nonexistent-id"),
    Case(["tokens", "revoke", HUGE_ID], rf"no token with id {HUGE_ID}", id="tokens-out-of-range-id"),
    Case(["tokens", "create", "nobody"], r"no user named 'nobody'", id="tokens-nonexistent-user"),
    Case(["tokens", "create", "known-user", "--days", "0"], r"--days must be between 1 and", a_user,
         id="tokens-days-out-of-range"),
    # export_sor
    Case(["export_sor", "--to", "2026-01-31"], r"the following arguments are required: --from",
         id="export-sor-missing-from"),
    Case(["export_sor", "--from", "2026-02-30", "--to", "2026-03-01"], r"--from must be a date YYYY-MM-DD",
         id="export-sor-malformed-date"),
    Case(["export_sor", "--from", "2026-03-01", "--to", "2026-02-01"], r"ends \(to 2026-02-01\) before it starts",
         id="export-sor-reversed-range"),
    Case(["export_sor", "--from", "2026-01-01", "--to", "2026-01-31", "--format", "xml"],
         r"argument --format: invalid choice: 'xml'", id="export-sor-unknown-format"),
    Case(["export_sor", "--from", "2026-01-01", "--to", "2026-01-31", "--territory", "US"],
         r"not EU/EEA country codes: US", id="export-sor-bad-territory"),
    Case(["export_sor", "--from", "2026-01-01", "--to", "2026-01-31", "--out", f"{MISSING_DIR}/sor.json"],
         rf"cannot write {MISSING_DIR}/sor\.json", id="export-sor-missing-directory"),
    # createuser
    Case(["createuser", "alice"], r"the following arguments are required: --role", id="createuser-missing-role"),
    Case(["createuser", "alice", "--role", "emperor"], r"argument --role: invalid choice: 'emperor'",
         id="createuser-unknown-role"),
    Case(["createuser", "a" * 200, "--role", "uploader"], r"username: .*at most 150 characters",
         id="createuser-username-too-long"),
    Case(["createuser", "bad name!", "--role", "uploader"], r"username: enter a valid username",
         id="createuser-username-malformed"),
    Case(["createuser", "alice", "--role", "uploader", "--email", "alice-at-example"], r"email: enter a valid email",
         id="createuser-email-malformed"),
]


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=worker_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def test_every_command_has_cases() -> None:
    commands = {p.stem for p in ROOT.glob("apps/*/management/commands/*.py") if p.stem != "__init__"}
    assert commands == {c.args[0] for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_arguments_get_a_message_and_a_non_zero_exit(case: Case) -> None:
    if case.setup:
        case.setup()
    res = manage(*case.args)
    output = res.stdout + res.stderr
    assert "Traceback" not in output, output
    assert res.returncode != 0, output
    assert any(re.search(case.message, line, re.IGNORECASE) for line in output.splitlines()), output
