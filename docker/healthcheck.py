"""Container HEALTHCHECK for the web image: ``GET /readyz`` on the local gunicorn; exit 0 only on 200.

``/readyz`` checks the database, broker and storage read-only (``/livez`` would only say the
process answers); Docker reports the container unhealthy, it does not restart it.

Sends a ``Host`` allowed by ``ALLOWED_HOSTS`` (its first concrete entry) so a deployment that
lists only its public name still passes Django's host check.
"""

from __future__ import annotations

import http.client
import os
import sys


def allowed_host() -> str:
    for h in os.environ.get("ALLOWED_HOSTS", "").split(","):
        h = h.strip().lstrip(".")
        if h and h != "*":
            return h
    return "localhost"


def main() -> int:
    port = int(os.environ.get("MEDIAINTEL_HEALTHCHECK_PORT", "8000"))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=8)
    try:
        conn.request("GET", "/readyz", headers={"Host": allowed_host(), "X-Forwarded-Proto": "https"})
        resp = conn.getresponse()
        body = resp.read(4000)
    except OSError as e:
        print(f"readyz unreachable: {e}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    if resp.status != 200:
        print(f"readyz {resp.status}: {body.decode(errors='replace')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
