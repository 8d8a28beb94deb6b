"""Shared fixtures: a real `pulse-exporter` process, and real binaries (promtool, node_exporter).

A missing binary skips its tests with the reason printed, except under CI=true, where it fails them:
CI must never pass by running less than it claims.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_binary(name: str, *alternatives: str) -> str:
    """Path of a binary the test needs; fail under CI, skip elsewhere, when it is missing."""
    for candidate in (name, *alternatives):
        path = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if path:
            return path
    reason = f"{name} is not installed (run ./scripts/test, which installs it with apt-get)"
    if IN_CI:
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` until it is true; AssertionError naming `what` at the deadline. For state another
    thread or process changes (a server's record of what it received), which a test must not read once
    and hope."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g}s")
        time.sleep(0.01)


def exporter_command() -> list[str]:
    script = Path(sys.executable).parent / "pulse-exporter"
    return [str(script)] if script.exists() else [sys.executable, "-m", "exporter"]


@dataclass
class RunningExporter:
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

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path else ""


StartExporter = Callable[..., RunningExporter]


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[StartExporter]:
    """Start `pulse-exporter` with the given config text and flags; stopped after the test."""
    started: list[RunningExporter] = []

    def start(
        config: str | None = None,
        *args: str,
        scheme: str = "http",
        wait: bool = True,
        env: dict[str, str] | None = None,
        **client_kwargs: object,
    ) -> RunningExporter:
        port = free_port()
        command = [*exporter_command(), f"--web.listen-address=127.0.0.1:{port}", *args]
        if config is not None:
            config_path = tmp_path / "pulse.yml"
            config_path.write_text(config)
            command.append(f"--config.file={config_path}")
        log_path = tmp_path / f"exporter-{port}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=tmp_path,
                env={**os.environ, **(env or {})},
            )
        running = RunningExporter(process, port, scheme, log_path, client_kwargs)
        started.append(running)
        if wait:
            _wait_until_healthy(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
            try:
                running.process.wait(10)
            except subprocess.TimeoutExpired:
                running.process.kill()


def _wait_until_healthy(running: RunningExporter, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise AssertionError(f"pulse-exporter exited with {running.process.returncode}:\n{running.logs()}")
        try:
            if running.get("/-/healthy").status_code in (200, 401):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"pulse-exporter did not become healthy in {timeout}s:\n{running.logs()}")


def parse_samples(text: str) -> dict[str, float]:
    """Text exposition -> {'name{labels}': value}; labels kept exactly as exposed."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def landing_table(page: str, title: str) -> list[list[str]]:
    """The rows of the landing page's table under `<h2>title</h2>`, each as its cells' text (no tags)."""
    table = page.split(f"<h2>{title}</h2>", 1)[1].split("</table>", 1)[0]
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]
    ]
