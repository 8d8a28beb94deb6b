"""A `pulse-exporter` process for a module-scoped fixture (conftest's `start_exporter` is per test):
started in a directory of its own, waited for separately, so that several can start at once.

    running = launch(directory, config_text, web_config)   # started
    wait_healthy(running)                                  # answering (200, or 401 behind basic auth)
    stop(running)
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.helpers import RunningExporter, exporter_command, free_port, wait_until


def launch(directory: Path, config: str, web_config: dict[str, Any] | None = None) -> RunningExporter:
    """Start pulse-exporter with `config` (YAML text) and `web_config` (data), in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "pulse.yml"
    config_path.write_text(config)
    port = free_port()
    command = [*exporter_command(), f"--web.listen-address=127.0.0.1:{port}", f"--config.file={config_path}"]
    if web_config is not None:
        (directory / "web.yml").write_text(yaml.safe_dump(web_config))
        command.append(f"--web.config.file={directory / 'web.yml'}")
    log_path = directory / "exporter.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=directory)
    return RunningExporter(process, port, log_path=log_path)


def wait_healthy(running: RunningExporter) -> RunningExporter:
    def healthy() -> bool:
        running.assert_running()
        try:
            return running.get("/-/healthy").status_code in (200, 401)
        except httpx.HTTPError:
            return False

    wait_until(healthy, 30, lambda: f"pulse-exporter not healthy:\n{running.logs()}", interval=0.05)
    return running


def stop(running: RunningExporter) -> None:
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.process.wait(10)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait(10)
