"""Plain helpers shared by the tests (fixtures live in conftest.py): what a test may not have, waiting for
state another thread or process changes, reading an exposition, a running `pulse-exporter`.

A test that cannot run here (a missing binary, a database that does not answer) skips with the reason,
except under CI=true, where it fails: CI must never pass by running less than it claims.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

# ------------------------------------------------------------------------------------- what a test needs

IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """This test cannot run here: fail under CI=true, skip elsewhere, with the reason."""
    if IN_CI:
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def require_binary(name: str, *alternatives: str) -> str:
    """Path of a binary the test needs (a name on PATH or a file path); `unavailable` when it is missing."""
    for candidate in (name, *alternatives):
        path = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if path:
            return path
    unavailable(f"{name} is not installed (run ./scripts/test, which installs it with apt-get)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------- waiting


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = 10.0,
    what: str | Callable[[], str] = "condition",
    *,
    interval: float = 0.01,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Poll `condition` until it returns something true, and return that; AssertionError naming `what`
    (a text, or a function giving one with the latest state) at the deadline. For state another thread
    or process changes, which a test must not read once and hope. `condition` may raise to give up at
    once (a process it waits on has exited). `interval` spaces polls that cost something (a query to a
    server); `sleep` passes that time: a test that drives an asyncio loop itself lets the loop run."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what if isinstance(what, str) else what()}: not reached within {timeout:g}s")
        sleep(interval)
    return result


# ----------------------------------------------------------------------------------------- expositions

Samples = dict[str, float]  # 'name{a="x",b="y"}' -> value: labels in the order exposed, values escaped
Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs, unescaped
ByName = dict[str, dict[Labels, float]]  # sample name -> labels -> value: label order does not matter


def series(name: str, labels: Mapping[str, str]) -> str:
    """A sample's key in `Samples`: as the text format writes it ('name' alone without labels)."""
    if not labels:
        return name
    escaped = (v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') for v in labels.values())
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in zip(labels, escaped, strict=True)) + "}"


def samples_of(families: Iterable[Metric]) -> Samples:
    """Families (a collector's, a probe sink's, or parsed) as {series: value}."""
    return {series(s.name, s.labels): s.value for family in families for s in family.samples}


def by_name(families: Iterable[Metric]) -> ByName:
    """Families as {sample name: {sorted labels: value}}, for comparing series whatever their label order."""
    found: ByName = {}
    for family in families:
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


def parse_families(text: str) -> list[Metric]:
    """The one exposition parser: the text format (0.0.4) read with client_python's parser, not with
    anything of Pulse's, so a test sees what Prometheus would. A malformed line or a series exposed
    twice is an AssertionError."""
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as err:
        raise AssertionError(f"not a valid exposition: {err}") from err
    seen: set[tuple[str, Labels]] = set()
    for family in families:
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in seen, f"series exposed twice: {series(s.name, s.labels)}"
            seen.add(key)
    return families


def parse_samples(text: str) -> Samples:
    """A text exposition as {series: value}."""
    return samples_of(parse_families(text))


def parse_by_name(text: str) -> ByName:
    """A text exposition as {sample name: {sorted labels: value}}."""
    return by_name(parse_families(text))


# ------------------------------------------------------------------------------------------ the exporter


def exporter_command() -> list[str]:
    script = Path(sys.executable).parent / "pulse-exporter"
    return [str(script)] if script.exists() else [sys.executable, "-m", "exporter"]


@dataclass
class RunningExporter:
    """A `pulse-exporter` process started by the `start_exporter` fixture."""

    process: subprocess.Popen[str]
    port: int
    scheme: str = "http"
    log_path: Path | None = None
    client_kwargs: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        with httpx.Client(**self.client_kwargs) as client:  # type: ignore[arg-type]
            return client.get(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        with httpx.Client(**self.client_kwargs) as client:  # type: ignore[arg-type]
            return client.post(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def metrics_text(self) -> str:
        response = self.get("/metrics", headers={"Accept": "text/plain"})
        response.raise_for_status()
        return response.text

    def samples(self) -> Samples:
        """One scrape of /metrics as {series: value}."""
        return parse_samples(self.metrics_text())

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def assert_running(self) -> None:
        """AssertionError with the log if the process has exited: a wait on it ends at once."""
        if self.process.poll() is not None:
            raise AssertionError(f"pulse-exporter exited with {self.process.returncode}:\n{self.logs()}")

    def wait_for_samples(self, condition: Callable[[Samples], object], what: str, timeout: float = 30.0) -> Samples:
        """Scrape until `condition` holds for the samples and return them (a generous bound: this is not a
        speed test); at the deadline the message has the last scrape and the log."""
        last = ""

        def holds() -> list[Samples] | None:  # in a list: samples that satisfy `condition` may be empty
            nonlocal last
            self.assert_running()
            last = self.metrics_text()
            found = parse_samples(last)
            return [found] if condition(found) else None

        return wait_until(holds, timeout, lambda: f"{what}; last scrape:\n{last}\n{self.logs()}", interval=0.05)[0]


StartExporter = Callable[..., RunningExporter]

# ---------------------------------------------------------------------------------------- landing page


def landing_table(page: str, title: str) -> list[list[str]]:
    """The rows of the landing page's table under `<h2>title</h2>`, each as its cells' text (no tags)."""
    table = page.split(f"<h2>{title}</h2>", 1)[1].split("</table>", 1)[0]
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]
    ]


# A callable that starts Debian's node_exporter with flags and returns its /metrics URL (conftest.py).
StartNodeExporter = Callable[..., str]


def node_exporter_text(url: str) -> str:
    response = httpx.get(url, headers={"Accept": "text/plain"}, timeout=10)
    response.raise_for_status()
    assert response.text.strip(), "empty node_exporter body"
    return response.text
