"""Demo step: start `fs serve` on a free loopback port, ask it for features the way a model service would, stop it.

Stands for a user's own client code; the same request works with `curl` against `fs serve`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "fs_cli", "serve", "--port", str(port), "--no-log"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/ready", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    print(server.stderr.read().decode() if server.stderr else "", file=sys.stderr)
                    print("fs serve did not become ready", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        body = {"features": ["fg_customer_profile:segment", "fg_customer_profile:credit_limit",
                             "fg_customer_transactions:tx_count_7d"],
                "entities": {"customer_id": [1, 2, 999999]}}
        print(f"POST {base}/get-online-features\n{json.dumps(body)}")
        req = urllib.request.Request(f"{base}/get-online-features", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
        t = time.perf_counter()
        answer = json.loads(urllib.request.urlopen(req, timeout=10).read())
        ms = (time.perf_counter() - t) * 1000
        print(json.dumps(answer, indent=1)[:2500])
        print(f"answered in {ms:.1f} ms. Customer 999999 does not exist: NOT_FOUND. tx_count_7d is NOT_FOUND too: "
              "materialization keeps only rows within a group's TTL (2 days) of now, and the demo data end in "
              "January 2026.")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
