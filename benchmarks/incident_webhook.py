"""How many Alertmanager deliveries per second Pulse's webhook accepts into a SQLite journal, fsync and all.

Starts `pulse-exporter` with `incidents.enabled` and its journal in a temporary directory (SQLite, WAL,
synchronous=FULL: each 200 waits for its commit to reach the disk), then POSTs webhook deliveries
(payload version 4, `--alerts` alerts each, half of them new alerts and half repeats of known ones) from
`--clients` concurrent keep-alive connections, and prints deliveries/s, alerts/s and latency
percentiles. The anchor is the disk itself: the same number of fsynced SQLite commits of one row each,
made directly from Python, which bounds what any durable receiver could do on this machine.

    .venv/bin/python benchmarks/incident_webhook.py                   # --deliveries 400 --clients 1,4 --alerts 1,10
    .venv/bin/python benchmarks/incident_webhook.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def delivery(serial: int, alerts: int) -> dict[str, Any]:
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_800_000_000 + serial // 2)) + ".123456789Z"
    return {
        "version": "4",
        "status": "firing",
        "receiver": "pulse-journal",
        "groupKey": "{}:{}",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Bench", "severity": "warning", "service": "shop", "n": str(n)},
                "annotations": {"summary": "a benchmark alert"},
                "startsAt": started,  # two deliveries in a row share a start: every other one is a repeat
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus/graph",
                "fingerprint": f"{serial // 2:08x}{n:08x}",
            }
            for n in range(alerts)
        ],
    }


def run_pulse(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = directory / "pulse.yml"
    config.write_text(f"incidents: {{enabled: true, database: 'sqlite:///{directory}/incidents.db'}}\n")
    command = [str(Path(sys.executable).parent / "pulse-exporter"), f"--web.listen-address=127.0.0.1:{port}"]
    process = subprocess.Popen(
        [*command, f"--config.file={config}", "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("pulse-exporter did not become ready")


def measure(url: str, deliveries: int, clients: int, alerts: int, first_serial: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    bodies = [json.dumps(delivery(first_serial + i, alerts)).encode() for i in range(deliveries)]

    def client(offset: int) -> None:
        with httpx.Client(timeout=30, headers={"Content-Type": "application/json"}) as http:
            for body in bodies[offset::clients]:
                start = time.perf_counter()
                response = http.post(f"{url}/alertmanager/webhook", content=body)
                elapsed = time.perf_counter() - start
                if response.status_code != 200:
                    raise SystemExit(f"webhook answered {response.status_code}: {response.text}")
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "clients": clients,
        "alerts_per_delivery": alerts,
        "deliveries_per_second": deliveries / wall,
        "alerts_per_second": deliveries * alerts / wall,
        "p50_ms": cuts[49] * 1000,
        "p90_ms": cuts[89] * 1000,
        "p99_ms": cuts[98] * 1000,
    }


def fsynced_commits_per_second(directory: Path, commits: int) -> float:
    """The anchor: one-row commits into a SQLite WAL database with synchronous=FULL, straight from Python."""
    connection = sqlite3.connect(directory / "anchor.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE t (n INTEGER)")
    start = time.perf_counter()
    for n in range(commits):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t VALUES (?)", (n,))
        connection.execute("COMMIT")
    wall = time.perf_counter() - start
    connection.close()
    return commits / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=400)
    parser.add_argument("--clients", default="1,4", help="comma-separated concurrency levels")
    parser.add_argument("--alerts", default="1,10", help="comma-separated alerts per delivery")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pulse-webhook-bench-") as temporary:
        directory = Path(temporary)
        anchor = fsynced_commits_per_second(directory, args.deliveries)
        process, url = run_pulse(directory)
        results = []
        serial = 0
        try:
            for alerts in (int(a) for a in args.alerts.split(",")):
                for clients in (int(c) for c in args.clients.split(",")):
                    results.append(measure(url, args.deliveries, clients, alerts, serial))
                    serial += args.deliveries
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(10)
    report = {"fsynced_sqlite_commits_per_second": anchor, "load": os.getloadavg()[0], "runs": results}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"anchor: {anchor:.0f} fsynced one-row SQLite commits/s on this disk (load {report['load']:.1f})")
    header = ("clients", "alerts", "deliveries/s", "alerts/s", "p50 ms", "p90 ms", "p99 ms")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (7, 6, 12, 9, 7, 7, 7), strict=True)))
    for r in results:
        print(
            f"{r['clients']:>7} {r['alerts_per_delivery']:>6} {r['deliveries_per_second']:>12.0f} "
            f"{r['alerts_per_second']:>9.0f} {r['p50_ms']:>7.1f} {r['p90_ms']:>7.1f} {r['p99_ms']:>7.1f}"
        )


if __name__ == "__main__":
    main()
