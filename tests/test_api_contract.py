"""The API keeps its OpenAPI contract: schemathesis, every check plus stateful (links) testing,
against the live server with a real worker.

Fixed: the seed and the number of examples per operation (``EXAMPLES``), so a run is
reproducible. A failure fails the test with schemathesis's report, which shows each failing
request as a ``curl`` command that reproduces it. Webhook subscriptions the run creates point
at a receiver on 127.0.0.1 in this process (``tests/contract_hooks.py``): no request leaves the
machine.

The run must find nothing: ``KNOWN`` (failures tolerated for a stated reason) is empty, so any
failure fails the test; should an entry ever be needed again, a known failure that no longer
appears is reported so the entry can be removed. What the schema states but schemathesis cannot
draw unaided (real media for file parts, policy documents, ``block`` not below ``review``) is
taught to it in ``tests/contract_hooks.py``, for valid cases only; the configuration adds the two
rules no schema keyword states (no NUL in text; a range past the end is a 416).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.accounts.services import create_token
from apps.moderation.models import WebhookSubscription

ROOT = Path(__file__).resolve().parents[1]
SEED = 1
#: examples per operation and phase: about 60 operations × (examples + coverage + fuzzing)
#: stays within a few minutes on two cores, and each operation still meets valid and invalid
#: data in every parameter
EXAMPLES = 10

#: what valid data may get from the content endpoint: schemathesis's default for valid data, plus 416
RANGE_STATUSES = '["2xx", "3xx", "401", "403", "404", "409", "416", "429", "5xx"]'
#: (operation, schemathesis check code) → why it still fails. Remove an entry when it is fixed.
KNOWN: dict[tuple[str, str], str] = {}
#: a section of the report: one operation, or the stateful phase's (whose failures name no single
#: operation: they are keyed "Stateful tests", so one is never taken for the operation before it)
_OPERATION = re.compile(r"^_{3,} ([A-Z]+ \S+|Stateful tests) _{3,}$", re.M)
_CHECK = re.compile(r"^- (ST\d+) ", re.M)


def failures(report: str) -> dict[tuple[str, str], str]:
    """(operation, check code) → that operation's section of schemathesis's FAILURES report."""
    start = report.find("FAILURES")
    if start < 0:
        return {}
    body = report[start:]
    heads = list(_OPERATION.finditer(body))
    out: dict[tuple[str, str], str] = {}
    for i, head in enumerate(heads):
        section = body[head.start():heads[i + 1].start() if i + 1 < len(heads) else len(body)]
        for code in _CHECK.findall(section):
            out[(head.group(1), code)] = section
    return out


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that accepts everything and remembers what it got."""

    received: list[tuple[str, dict[str, str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.received.append((self.path, dict(self.headers)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def admin_token() -> str:
    user = get_user_model().objects.create_user("contract-admin", password="x")
    user.groups.add(Group.objects.get(name="admin"))
    return create_token(user, actor=user, name="contract")[1]


def test_the_api_keeps_its_openapi_contract_when_fuzzed_with_every_check_and_stateful_links(
        live_server, start_worker, isolated_storage, settings, receiver, tmp_path):
    settings.MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    start_worker(env={"MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE": "1"})
    # look-alike queries get a worker of their own, as in production: the uploads keep the first one
    # busy, and a query that waits past its timeout is a 503
    start_worker(role="search", name="w-search", concurrency=1)
    token = admin_token()
    schema = live_server.url + reverse("schema") + "?format=json"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract_hooks", "MEDIAINTEL_CONTRACT_RECEIVER": receiver,
           "PYTHONPATH": str(ROOT)}
    config = tmp_path / "schemathesis.toml"  # no cache of earlier runs' failures: each run starts clean
    # no NUL in generated text: the API refuses U+0000 in any text it stores (PostgreSQL cannot hold
    # it; docs/api.md), a rule no JSON Schema keyword states; tests/test_api_errors.py checks the 400s
    # and a Range the schema admits may start beyond the end of the file: RFC 9110's answer is 416
    config.write_text(f'[generation]\nallow-x00 = false\n\n[cache]\nenabled = false\n'
                      f'directory = "{tmp_path / "cache"}"\n\n'
                      f'[[operations]]\ninclude-name = "GET /api/v1/assets/{{id}}/content/"\n'
                      f'checks.positive_data_acceptance.expected-statuses = {RANGE_STATUSES}\n')
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", schema, "--checks", "all",
           "--phases", "examples,coverage,fuzzing,stateful", "--seed", str(SEED),
           "--max-examples", str(EXAMPLES), "--generation-database", "none", "--workers", "1",
           "--continue-on-failure", "--no-shrink", "--no-color", "--request-timeout", "60",
           "-H", f"Authorization: Token {token}", "--report-dir", str(tmp_path / "report")]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    report = run.stdout + run.stderr
    if log := os.environ.get("MEDIAINTEL_CONTRACT_LOG"):  # the whole run, for reading at leisure
        Path(log).write_text(report)
    found = failures(report)
    if run.returncode != 0 and not found:  # schemathesis itself failed (schema unreadable, errors)
        pytest.fail(f"schemathesis did not complete:\n{report[-6000:]}", pytrace=False)
    new = {key: section for key, section in found.items() if key not in KNOWN}
    if new:
        pytest.fail("schemathesis found contract failures (each with a curl command that reproduces it):\n"
                    + "\n".join(dict.fromkeys(new.values())), pytrace=False)
    if fixed := sorted(set(KNOWN) - set(found)):
        print(f"known contract failures no longer seen (remove them from KNOWN): {fixed}")

    # every subscription the run left behind points at the local receiver
    targets = set(WebhookSubscription.objects.values_list("url", flat=True))
    assert targets <= {receiver}, targets
