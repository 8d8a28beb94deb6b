"""What a scrape of the incident journal's metrics costs with a large journal: the incidents collector's
collect() (one GROUP BY query in a worker thread, then the metric families) over INCIDENTS incidents in
SQLite, and the size of its output.

The journal is filled through Journal.record() (deliveries of BATCH alerts each: firing, and for most of
them resolved later), over SERVICES services of TEAMS teams, with ACKNOWLEDGED of them acknowledged
(written in one UPDATE: acknowledging one at a time costs an fsync each, and only the reading is
measured). It prints the fill time, then collect()'s median and p90 wall time over SCRAPES runs, in two
cases: the journal changed before every scrape (a delivery recorded: the full query runs), and unchanged
(SQLite's change counter says so: the last figures are served again).

    .venv/bin/python benchmarks/incidents_collect.py
    .venv/bin/python benchmarks/incidents_collect.py --incidents 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from exporter.exposition import encode_text
from exporter.incidents.collector import IncidentsCollector
from exporter.incidents.config import IncidentsConfig
from exporter.incidents.journal import Journal, sqlite_url
from exporter.incidents.model import AlertNotice

BATCH = 1000
SEVERITIES = ("critical", "warning", "warning", "info")
TEAMS = ("platform", "marketing", "customer-service")
SERVICES = 12
ACKNOWLEDGED = 0.6  # share of incidents acknowledged
OPEN = 0.01  # share still open


def fill(url: str, incidents: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    start = time.time() - 90 * 86400
    with Journal(url) as journal:
        for first in range(0, incidents, BATCH):
            notices = []
            for number in range(first, min(first + BATCH, incidents)):
                began = start + number * 60.0
                labels = {
                    "alertname": f"Alert{number % 30}",
                    "severity": rng.choice(SEVERITIES),
                    "team": rng.choice(TEAMS),
                    "service": f"service-{rng.randrange(SERVICES)}",
                }
                still_open = rng.random() < OPEN
                notices.append(
                    AlertNotice(
                        fingerprint=f"{number:016x}",
                        status="firing" if still_open else "resolved",
                        labels=labels,
                        annotations={"summary": "A benchmark alert."},
                        starts_at=began,
                        ends_at=None if still_open else began + rng.expovariate(1 / 3600),
                    )
                )
            journal.record(notices, received_at=time.time())
    database = url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE pulse_incidents SET acknowledged_at = started_at + (abs(random()) % 1800), acknowledged_by = 'b' "
            "WHERE abs(random()) % 1000 < ?",
            (int(ACKNOWLEDGED * 1000),),
        )


def a_delivery(journal: Journal, number: int) -> None:
    labels = {"alertname": "Changed", "severity": "critical", "team": "platform", "service": "service-0"}
    notice = AlertNotice(f"changed{number}", "firing", labels, {}, starts_at=time.time(), ends_at=None)
    journal.record([notice], received_at=time.time())


async def measure(url: str, scrapes: int, *, changed: bool) -> tuple[list[float], int, int]:
    """collect()'s wall times (seconds), and the last scrape's number of samples and bytes of text."""
    collector = IncidentsCollector(IncidentsConfig(enabled=True, database=url))
    await collector.start()
    try:
        times = []
        families = list(await collector.collect())  # the first reading, whatever the case
        with Journal(url) as journal:
            for number in range(scrapes):
                if changed:
                    a_delivery(journal, number)
                began = time.perf_counter()
                families = list(await collector.collect())
                times.append(time.perf_counter() - began)
        return sorted(times), sum(len(f.samples) for f in families), len(encode_text(families))
    finally:
        await collector.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = sqlite_url(Path(directory) / "incidents.db")
        began = time.perf_counter()
        fill(url, args.incidents)
        print(f"journal: {args.incidents} incidents in SQLite, filled in {time.perf_counter() - began:.1f} s")
        for changed in (True, False):
            times, samples, size = asyncio.run(measure(url, args.scrapes, changed=changed))
            case = "journal changed before each scrape" if changed else "journal unchanged"
            print(
                f"collect(), {case}: median {statistics.median(times) * 1000:.2f} ms, p90 "
                f"{times[int(len(times) * 0.9) - 1] * 1000:.2f} ms over {args.scrapes} scrapes; "
                f"{samples} samples, {size} bytes of text"
            )


if __name__ == "__main__":
    main()
