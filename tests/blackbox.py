"""Debian's blackbox_exporter as a real peer for the differential tests of every prober."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import free_port, parse_samples, require_binary


@contextmanager
def running_blackbox(modules: str, directory: Path) -> Iterator[str]:
    """blackbox_exporter with `modules` (a blackbox.yml text) as its config; yields its base URL.

    Fails under CI=true (skips elsewhere) when the binary is missing; its log is in directory/blackbox.log.
    """
    binary = require_binary("prometheus-blackbox-exporter", "blackbox_exporter")
    (directory / "blackbox.yml").write_text(modules)
    port = free_port()
    with (directory / "blackbox.log").open("w") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={directory / 'blackbox.yml'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{url}/-/healthy", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (directory / "blackbox.log").read_text()
            assert time.monotonic() < deadline, "blackbox_exporter did not start"
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def probe_through(base_url: str, target: str, module: str) -> dict[str, float]:
    """One /probe through an exporter (blackbox or Pulse) at base_url, as parsed samples."""
    response = httpx.get(f"{base_url}/probe", params={"target": target, "module": module}, timeout=10)
    assert response.status_code == 200, response.text
    return parse_samples(response.text)
