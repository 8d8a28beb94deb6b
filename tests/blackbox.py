"""Debian's blackbox_exporter as a real peer for the differential tests of every prober."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.helpers import free_port, parse_samples, require_binary, wait_until


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

    def healthy() -> bool:
        try:
            if httpx.get(f"{url}/-/healthy", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (directory / "blackbox.log").read_text()
        return False

    try:
        wait_until(healthy, 15, "blackbox_exporter started", interval=0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def probe_through(base_url: str, target: str, module: str) -> dict[str, float]:
    """One /probe through an exporter (blackbox or Pulse) at base_url, as parsed samples."""
    response = httpx.get(f"{base_url}/probe", params={"target": target, "module": module}, timeout=10)
    assert response.status_code == 200, response.text
    return parse_samples(response.text)


PULSE_EXTRAS = frozenset({"probe_failure_info"})  # Pulse's own additions, on purpose


def differences(case: str, theirs: dict[str, float], ours: dict[str, float], compared: tuple[str, ...]) -> list[str]:
    """Where Pulse's answer differs from blackbox's: the `compared` values, and the set of metric names."""
    found = [
        f"{case}: {name} blackbox={theirs.get(name)} pulse={ours.get(name)}"
        for name in compared
        if theirs.get(name) != ours.get(name)
    ]
    theirs_names = {key.split("{")[0] for key in theirs}
    ours_names = {key.split("{")[0] for key in ours} - PULSE_EXTRAS
    if theirs_names != ours_names:
        found.append(f"{case}: metric names differ: {sorted(theirs_names ^ ours_names)}")
    return found
