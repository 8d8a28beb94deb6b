"""Pulse against mtail, the anchor: the same generated nginx log, rotated every way while Pulse follows
it, must give the same counts as mtail (tests/mtail/access.mtail) reading every rotated file once.

Pulse follows the live path through rename+create, copytruncate, a deletion and a file that appears
later; every generation of the log is kept (the copy copytruncate makes, a copy taken before the
deletion), so mtail `--one_shot` over them reads exactly the lines that were written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from exporter.access_logs.collector import AccessLog
from tests.access_logs import Request, counts, nginx_line, one_log, random_requests, write_lines
from tests.helpers import require_binary

PROGRAM = Path(__file__).parent / "mtail" / "access.mtail"
ROUTES = [
    {"name": "product", "path": "/products/[0-9]+"},
    {"name": "order", "path": "/api/orders/[0-9]+"},
    {"name": "home", "path": "/"},
]
GARBAGE = ("garbage\n", '10.0.0.1 - - [07/Dec/2026:02:50:00 +0000] "GET / HTTP/1.1" 2OO 5 "-" "-" 0.1\n', "\n")


class Writer:
    """Writes the generated requests (and now and then a garbage line) to the log, in slices."""

    def __init__(self, path: Path, requests: list[Request]) -> None:
        self.path, self.requests, self.written = path, requests, 0

    def write(self, count: int) -> None:
        text = []
        for request in self.requests[self.written : self.written + count]:
            text.append(
                nginx_line(request.method, request.path, request.code, request.size, request_time=request.request_time)
            )
            if len(text) % 97 == 0:
                text.append(GARBAGE[len(text) % len(GARBAGE)])
        self.written += count
        write_lines(self.path, "".join(text))


def poll_all(log: AccessLog) -> None:
    while log.poll():
        pass


def run_mtail(logs: list[Path], tmp_path: Path) -> dict[str, Any]:
    mtail = require_binary("mtail")
    programs = tmp_path / "progs"
    programs.mkdir()
    shutil.copy(PROGRAM, programs)
    done = subprocess.run(
        [
            mtail,
            "--progs",
            str(programs),
            "--logs",
            ",".join(map(str, logs)),
            "--one_shot",
            "--logtostderr",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: metrics[0] for name, metrics in json.loads(done.stdout).items()}


def mtail_values(metric: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    return {tuple(entry.get("Labels", ())): entry["Value"] for entry in metric.get("LabelValues", [])}


def test_pulse_following_rotations_counts_what_mtail_counts_over_every_file(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.touch()
    writer = Writer(path, random_requests(6000, seed=11))
    log = one_log(path, routes=ROUTES)
    poll_all(log)

    writer.write(1000)
    poll_all(log)
    writer.write(500)  # rename+create, with lines written just before the rename
    path.rename(tmp_path / "access.log.1")
    writer.write(700)
    poll_all(log)
    writer.write(300)  # copytruncate: the copy keeps the lines, the live file starts again
    poll_all(log)
    shutil.copy(path, tmp_path / "access.log.2")
    path.write_text("")
    writer.write(400)
    poll_all(log)
    writer.write(100)  # deleted after a last write (its lines kept for mtail in a copy)
    shutil.copy(path, tmp_path / "access.log.3")
    path.unlink()
    poll_all(log)
    assert log.stats.files_followed == 0
    writer.write(3000)  # a file that appears later
    poll_all(log)

    mtail = run_mtail([tmp_path / f"access.log.{n}" for n in (1, 2, 3)] + [path], tmp_path)
    pulse = counts(log)
    assert (log.stats.rotations, log.stats.truncations) == (2, 1)

    expected_requests = {labels: value["Value"] for labels, value in mtail_values(mtail["http_requests_total"]).items()}
    got_requests = {
        (labels["route"], labels["method"], labels["code"]): value
        for labels, value in ((dict(k), v) for k, v in pulse["http_requests_total"].items())
    }
    assert sum(got_requests.values()) == 6000
    assert got_requests == expected_requests

    (unparsed,) = mtail_values(mtail["lines_unparsed_total"]).values()
    assert log.stats.lines_unparsed == unparsed["Value"] > 0

    by_method_code = _by_method_code(pulse["http_response_size_bytes_sum"])
    expected_bytes = {
        labels: value["Value"] for labels, value in mtail_values(mtail["http_response_size_bytes_sum"]).items()
    }
    assert by_method_code == expected_bytes

    # Histograms: mtail's buckets are per bucket, Prometheus' cumulative; both count v <= bound, except
    # that mtail leaves a duration of exactly 0 out of every bucket (its first bucket is (0, 0.005]),
    # though it counts it in _count: Pulse, like client_golang, puts 0 in le="0.005".
    zeros: dict[tuple[str, str], int] = {}
    for request in writer.requests:
        if float(request.request_time) == 0:
            zeros[(request.method, str(request.code))] = zeros.get((request.method, str(request.code)), 0) + 1
    assert zeros, "the generated durations include 0, so the difference is exercised"
    pulse_buckets: dict[tuple[str, str, str], float] = {}
    for labels, value in pulse["http_request_duration_seconds_bucket"].items():
        found = dict(labels)
        key = (found["method"], found["code"], found["le"])
        pulse_buckets[key] = pulse_buckets.get(key, 0) + value
    pulse_counts = _by_method_code(pulse["http_request_duration_seconds_count"])
    pulse_sums = _by_method_code(pulse["http_request_duration_seconds_sum"])
    for (method, code), histogram in mtail_values(mtail["http_request_duration_seconds"]).items():
        assert pulse_counts[(method, code)] == histogram["Count"]
        assert pulse_sums[(method, code)] == pytest.approx(histogram["Sum"])
        running = zeros.get((method, code), 0)
        for le, in_bucket in sorted(histogram["Buckets"].items(), key=lambda item: float(item[0])):
            running += in_bucket
            le_label = "+Inf" if le == "+Inf" else str(float(le))
            assert pulse_buckets[(method, code, le_label)] == running, (method, code, le)


def _by_method_code(values: dict[tuple[tuple[str, str], ...], float]) -> dict[tuple[str, str], float]:
    result: dict[tuple[str, str], float] = {}
    for labels, value in values.items():
        found = dict(labels)
        key = (found["method"], found["code"])
        result[key] = result.get(key, 0) + value
    return result
