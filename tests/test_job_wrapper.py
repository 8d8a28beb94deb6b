"""`pulse-exporter job run` as cron runs it: a real process with a minimal environment (PATH only), whose
command succeeds, fails, is killed, cannot be found, overlaps the previous run or outlives its timeout.
Each time the job's file in the textfile directory must say what happened, be whole whenever read, and
the wrapper must exit as the command did so that cron mail still works. The last test reads the file
through a running Pulse, as Prometheus will."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from exporter.textformat import parse
from tests.helpers import StartExporter, exporter_command, require_binary, wait_until

pytestmark = pytest.mark.integration

CRON_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C"}  # all cron gives a job
METRICS = (
    "running",
    "last_start_timestamp_seconds",
    "last_end_timestamp_seconds",
    "last_success_timestamp_seconds",
    "last_duration_seconds",
    "last_exit_code",
    "runs_total",
    "failures_total",
    "skipped_total",
)


def job_command(directory: Path, name: str, *command: str, options: tuple[str, ...] = ()) -> list[str]:
    return [
        *exporter_command(),
        "job",
        "run",
        "--name",
        name,
        f"--textfile-directory={directory}",
        *options,
        "--",
        *command,
    ]


def run_job(
    directory: Path, name: str, *command: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        job_command(directory, name, *command, options=options),
        env=CRON_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def start_job(directory: Path, name: str, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        job_command(directory, name, *command),
        env=CRON_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def job_metrics(directory: Path, name: str) -> dict[str, float]:
    """The job's file, parsed as node_exporter would; every metric present, once, with job_name only."""
    families = parse((directory / f"pulse_job_{name}.prom").read_text())
    found = {}
    for family in families.values():
        (metric,) = family.metrics
        assert metric.labels == {"job_name": name}, family.name
        assert family.help, family.name
        found[family.name.removeprefix("pulse_job_")] = metric.value
    assert set(found) == set(METRICS)
    return found


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def test_a_successful_run_is_recorded_and_its_output_passes_through(tmp_path: Path) -> None:
    before = time.time()
    result = run_job(tmp_path, "nightly_backup", "sh", "-c", "echo dumped; echo 'a warning' >&2")
    after = time.time()
    assert result.returncode == 0
    assert (result.stdout, result.stderr) == ("dumped\n", "a warning\n")
    metrics = job_metrics(tmp_path, "nightly_backup")
    assert before <= metrics["last_start_timestamp_seconds"] <= metrics["last_end_timestamp_seconds"] <= after
    assert metrics["last_success_timestamp_seconds"] == metrics["last_end_timestamp_seconds"]
    assert 0 < metrics["last_duration_seconds"] <= after - before
    assert (metrics["running"], metrics["last_exit_code"], metrics["runs_total"], metrics["failures_total"]) == (
        0,
        0,
        1,
        0,
    )


def test_a_failed_run_keeps_the_last_success_and_counts_a_failure(tmp_path: Path) -> None:
    assert run_job(tmp_path, "export", "true").returncode == 0
    succeeded = job_metrics(tmp_path, "export")["last_success_timestamp_seconds"]
    result = run_job(tmp_path, "export", "sh", "-c", "exit 3")
    assert result.returncode == 3
    assert result.stderr == ""
    metrics = job_metrics(tmp_path, "export")
    assert metrics["last_exit_code"] == 3
    assert metrics["last_success_timestamp_seconds"] == succeeded
    assert metrics["last_end_timestamp_seconds"] > succeeded
    assert (metrics["runs_total"], metrics["failures_total"]) == (2, 1)


def test_a_job_that_never_succeeded_has_a_last_success_of_zero(tmp_path: Path) -> None:
    assert run_job(tmp_path, "broken", "false").returncode == 1
    assert job_metrics(tmp_path, "broken")["last_success_timestamp_seconds"] == 0


def test_counters_survive_between_runs(tmp_path: Path) -> None:
    for command in ("true", "false", "true", "true"):
        run_job(tmp_path, "hourly", command)
    metrics = job_metrics(tmp_path, "hourly")
    assert (metrics["runs_total"], metrics["failures_total"], metrics["skipped_total"]) == (4, 1, 0)


def test_a_child_killed_by_a_signal_is_recorded_as_128_plus_the_signal(tmp_path: Path) -> None:
    result = run_job(tmp_path, "killed", "sh", "-c", "kill -KILL $$")
    assert result.returncode == 128 + signal.SIGKILL
    metrics = job_metrics(tmp_path, "killed")
    assert metrics["last_exit_code"] == 137
    assert metrics["failures_total"] == 1


def test_sigterm_to_the_wrapper_reaches_the_job_and_its_outcome_is_recorded(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    # `ready` once the sleep is started ($! set), and the sleep off the test's pipe: a sleep that outlived
    # the shell would otherwise hold stdout open and communicate() would wait for it.
    script = f"trap 'echo cleaning up; kill $!; exit 5' TERM; sleep 60 >/dev/null 2>&1 & touch {ready}; wait"
    job = start_job(tmp_path, "graceful", "sh", "-c", script)
    wait_until(ready.exists, 30, "the job's trap installed")
    assert job_metrics(tmp_path, "graceful")["running"] == 1  # written at the start: a hung job shows
    job.send_signal(signal.SIGTERM)
    stdout, _ = job.communicate(timeout=30)
    assert job.returncode == 5
    assert stdout == "cleaning up\n"
    metrics = job_metrics(tmp_path, "graceful")
    assert (metrics["running"], metrics["last_exit_code"], metrics["failures_total"]) == (0, 5, 1)


def test_sigterm_to_the_wrapper_of_a_job_that_does_not_catch_it(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    job = start_job(
        tmp_path, "plain", *python(f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(60)")
    )
    wait_until(ready.exists, 30, "the job started")
    job.send_signal(signal.SIGTERM)
    job.communicate(timeout=30)
    assert job.returncode == 128 + signal.SIGTERM
    assert job_metrics(tmp_path, "plain")["last_exit_code"] == 143


def test_a_command_that_is_not_found_is_a_failure_with_exit_code_127(tmp_path: Path) -> None:
    result = run_job(tmp_path, "typo", "pg_dumpp", "--all")
    assert result.returncode == 127
    assert result.stderr == "pulse-exporter job: pg_dumpp: command not found\n"
    metrics = job_metrics(tmp_path, "typo")
    assert (metrics["last_exit_code"], metrics["runs_total"], metrics["failures_total"]) == (127, 1, 1)


def test_a_command_that_is_not_executable_is_a_failure_with_exit_code_126(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")  # not chmod +x
    result = run_job(tmp_path, "noexec", str(script))
    assert result.returncode == 126
    assert job_metrics(tmp_path, "noexec")["last_exit_code"] == 126


def test_a_run_that_finds_the_previous_one_going_is_refused_and_counted(tmp_path: Path) -> None:
    release = tmp_path / "release"
    ready = tmp_path / "ready"
    first = start_job(tmp_path, "backup", "sh", "-c", f"touch {ready}; while [ ! -e {release} ]; do sleep 0.05; done")
    wait_until(ready.exists, 30, "the first run started")
    second = run_job(tmp_path, "backup", "sh", "-c", "echo must not run")
    assert second.returncode == 75
    assert second.stdout == ""
    assert "backup is still running (pid " in second.stderr
    assert "this run is skipped (exit code 75)" in second.stderr
    during = job_metrics(tmp_path, "backup")
    assert (during["running"], during["skipped_total"], during["runs_total"]) == (1, 1, 0)
    release.touch()
    assert first.wait(30) == 0
    after = job_metrics(tmp_path, "backup")
    assert (after["running"], after["skipped_total"], after["runs_total"], after["failures_total"]) == (0, 1, 1, 0)
    assert run_job(tmp_path, "backup", "true").returncode == 0  # the lock went with the first run


def test_a_timeout_stops_the_job_and_is_recorded_as_124(tmp_path: Path) -> None:
    result = run_job(tmp_path, "slow", "sleep", "60", options=("--timeout", "1s"))
    assert result.returncode == 124
    assert "timed out after 1s" in result.stderr
    metrics = job_metrics(tmp_path, "slow")
    assert metrics["last_exit_code"] == 124
    assert 1 <= metrics["last_duration_seconds"] < 30


def test_a_corrupt_previous_file_starts_the_counters_afresh_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "pulse_job_weekly.prom").write_text('pulse_job_runs_total{job_name="weekly"} 12\ngarbage\n')
    result = run_job(tmp_path, "weekly", "true")
    assert result.returncode == 0
    assert "pulse_job_weekly.prom is corrupt (line 2:" in result.stderr
    assert "counters start afresh" in result.stderr
    assert job_metrics(tmp_path, "weekly")["runs_total"] == 1


@pytest.mark.parametrize("name", ["nightly-backup", "9lives", "job name", "", "a" * 101, "../escape"])
def test_a_name_that_cannot_be_a_label_value_and_a_file_name_is_refused(tmp_path: Path, name: str) -> None:
    result = run_job(tmp_path, name, "true")
    assert result.returncode == 2
    assert "use letters, digits and underscores" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_command_goes_after_a_double_dash(tmp_path: Path) -> None:
    result = subprocess.run(
        [*exporter_command(), "job", "run", "--name", "x", f"--textfile-directory={tmp_path}"],
        env=CRON_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "give the command to run after --" in result.stderr


def test_the_job_runs_even_when_its_metrics_cannot_be_written(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    result = run_job(not_a_directory / "textfile", "resilient", "sh", "-c", "echo ran; exit 4")
    assert result.returncode == 4
    assert result.stdout == "ran\n"
    assert "cannot write the job's metrics in" in result.stderr


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    """Rewritten twice per run, read all the while: every read is a whole file, and no temporary file is
    ever named like one a textfile collector reads."""
    stop = threading.Event()
    reads: list[int] = []
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            for entry in os.listdir(tmp_path):
                if entry.endswith(".prom") and entry != "pulse_job_busy.prom":
                    problems.append(f"unexpected .prom file {entry}")
                if entry == "pulse_job_busy.prom":
                    try:
                        text = (tmp_path / entry).read_text()
                    except FileNotFoundError:
                        continue
                    families = parse(text)
                    if len(families) != len(METRICS):
                        problems.append(f"partial file: {text!r}")
                    reads.append(1)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        for _ in range(15):
            assert run_job(tmp_path, "busy", "true").returncode == 0
    finally:
        stop.set()
        thread.join(10)
    assert not problems, problems[:3]
    assert reads, "the reader never saw the file"
    assert job_metrics(tmp_path, "busy")["runs_total"] == 15


def test_the_job_file_is_clean_for_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    run_job(tmp_path, "lint_me", "true")
    text = (tmp_path / "pulse_job_lint_me.prom").read_text()
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pulse_serves_what_the_wrapper_wrote(tmp_path: Path, start_exporter: StartExporter) -> None:
    directory = tmp_path / "textfile"
    exporter = start_exporter(f"collectors:\n  host:\n    textfile: {{directory: '{directory}'}}\n")
    assert run_job(directory, "nightly_backup", "true").returncode == 0
    assert run_job(directory, "nightly_backup", "false").returncode == 1
    written = job_metrics(directory, "nightly_backup")
    samples = exporter.wait_for_samples(
        lambda s: s.get('pulse_job_runs_total{job_name="nightly_backup"}') == 2, "the job's runs served"
    )
    assert samples['pulse_job_last_success_timestamp_seconds{job_name="nightly_backup"}'] == pytest.approx(
        written["last_success_timestamp_seconds"]
    )
    assert samples['pulse_job_last_exit_code{job_name="nightly_backup"}'] == 1
    assert samples['pulse_job_failures_total{job_name="nightly_backup"}'] == 1
    assert samples["node_textfile_scrape_error"] == 0
    assert samples[f'node_textfile_mtime_seconds{{file="{directory}/pulse_job_nightly_backup.prom"}}'] > 0
    assert not any('job="' in key for key in samples)


def test_a_lock_file_planted_as_a_symlink_creates_nothing_where_it_points(tmp_path: Path) -> None:
    # In a directory others can write to, a symlink at the lock's path must not make a root job create
    # (or open for writing) a file of the attacker's choosing.
    directory, elsewhere = tmp_path / "textfile", tmp_path / "elsewhere"
    directory.mkdir()
    elsewhere.mkdir()
    for lock in (".pulse_job_nightly.lock", ".pulse_job_nightly.state.lock"):
        (directory / lock).symlink_to(elsewhere / lock)
    result = run_job(directory, "nightly", "true")
    assert result.returncode == 0  # the job still runs
    assert list(elsewhere.iterdir()) == []
    assert "cannot" in result.stderr
