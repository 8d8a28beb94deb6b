"""Shared fixtures: a real `pulse-exporter` process. Plain helpers (waiting, parsing an exposition,
skipping or failing when something is missing) are in tests/helpers.py."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    RunningExporter,
    StartExporter,
    StartNodeExporter,
    exporter_command,
    free_port,
    require_binary,
    wait_until,
)


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
            wait_until(
                lambda: _healthy(running), 20, lambda: f"pulse-exporter not healthy:\n{running.logs()}", interval=0.05
            )
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
            try:
                running.process.wait(10)
            except subprocess.TimeoutExpired:
                running.process.kill()


def _healthy(running: RunningExporter) -> bool:
    running.assert_running()
    try:
        return running.get("/-/healthy").status_code in (200, 401)
    except httpx.HTTPError:
        return False


@pytest.fixture
def start_node_exporter(tmp_path: Path) -> Iterator[StartNodeExporter]:
    """Start Debian's node_exporter on a free port with the given flags; returns its /metrics URL."""
    binary = require_binary("prometheus-node-exporter")
    processes: list[subprocess.Popen[bytes]] = []

    def start(*flags: str) -> str:
        port = free_port()
        log_path = tmp_path / f"node-exporter-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [binary, f"--web.listen-address=127.0.0.1:{port}", *flags], stdout=log, stderr=subprocess.STDOUT
            )
        processes.append(process)
        url = f"http://127.0.0.1:{port}/metrics"

        def answers() -> bool:
            assert process.poll() is None, f"node_exporter exited:\n{log_path.read_text()}"
            try:
                return httpx.get(url, timeout=10).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, 20, lambda: f"node_exporter answering:\n{log_path.read_text()}", interval=0.05)
        return url

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)
