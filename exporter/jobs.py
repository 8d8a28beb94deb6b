"""`pulse-exporter job run`: run a cron job (a backup, an export, a batch) and record how it went as
metrics in the textfile directory, so that "the backup ran last night" becomes a metric, then an alert.

One file per job, `<directory>/pulse_job_<name>.prom`, read by the textfile collector (Pulse's or
node_exporter's). It is written when the job starts (`pulse_job_running 1`: a hung job shows) and when it
ends, each time atomically: a temporary file in the same directory (named `.pulse_job_*.tmp`, which no
textfile collector reads), fsync, rename over the old file, fsync the directory. Readers see the old
file or the new one, never a part.

Counters (runs, failures, skipped runs) continue from the previous file. A previous file that cannot be
read back starts them afresh, and says so on standard error.

What the wrapper promises cron:
- the command's output passes through untouched; the wrapper's own messages go to standard error,
  prefixed `pulse-exporter job:`;
- it exits with the command's exit code (128 + N when a signal N killed it, 127 when it could not be
  found, 126 when it could not be run, 124 when --timeout stopped it), so cron mail still works;
- SIGTERM, SIGINT, SIGHUP and SIGQUIT sent to the wrapper are passed on to the command, and the outcome
  is recorded;
- a run that finds the previous one still going is refused (exit code 75, EX_TEMPFAIL) and counted in
  `pulse_job_skipped_total`: overlapping backups are worse than a skipped one. An flock on
  `.pulse_job_<name>.lock` decides, so a crashed run never leaves a stale lock behind;
- the job runs even when its metrics cannot be written (a missing directory): the backup matters more
  than its metric. The problem is reported on standard error, and the absent or stale metrics alert.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from types import FrameType

from exporter.textformat import TextFormatError, parse

DEFAULT_DIRECTORY = "/var/lib/pulse/textfile"  # what the docs give collectors.host.textfile.directory
NAME_PATTERN = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,99}")
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
KILL_GRACE_SECONDS = 10.0  # after --timeout's SIGTERM, before SIGKILL
EXIT_TIMEOUT = 124  # as coreutils' timeout(1)
EXIT_CANNOT_RUN = 126  # as the shell: found but not executable
EXIT_NOT_FOUND = 127
EXIT_OVERLAP = 75  # EX_TEMPFAIL: the previous run is still going; try again later

LABEL = "job_name"  # never `job`: that is Prometheus' target label


class JobError(Exception):
    """A usage error: bad name, bad directory flag."""


@dataclass(frozen=True)
class JobState:
    """Everything the job's file holds; one field per metric, in the order written."""

    running: float = 0
    last_start_timestamp_seconds: float = 0
    last_end_timestamp_seconds: float = 0
    last_success_timestamp_seconds: float = 0
    last_duration_seconds: float = 0
    last_exit_code: float = 0
    runs_total: float = 0
    failures_total: float = 0
    skipped_total: float = 0


HELP = {
    "running": "1 while the job runs, 0 once it has ended (stays 1 if the wrapper itself was killed).",
    "last_start_timestamp_seconds": "When the job's last run started, in seconds since the epoch.",
    "last_end_timestamp_seconds": "When the job's last run ended, in seconds since the epoch (0: never).",
    "last_success_timestamp_seconds": "When the job last ended with exit code 0, seconds since the epoch (0: never).",
    "last_duration_seconds": "How long the job's last completed run took.",
    "last_exit_code": "Exit code of the last completed run: 128+N if killed by signal N, 127 not found, 124 timed out.",
    "runs_total": "Completed runs of the job (successful or not).",
    "failures_total": "Completed runs that ended with a non-zero exit code.",
    "skipped_total": "Runs refused because the previous run was still going.",
}
COUNTERS = {"runs_total", "failures_total", "skipped_total"}


def metric_name(field_name: str) -> str:
    return f"pulse_job_{field_name}"


def validate_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise JobError(
            f"--name {name!r}: use letters, digits and underscores, not starting with a digit, at most 100 "
            "characters (it becomes a file name and the job_name label), e.g. nightly_backup"
        )
    return name


def render(name: str, state: JobState) -> str:
    """The job's file: HELP and TYPE on every metric, one sample each, labelled job_name."""
    lines = []
    for item in fields(JobState):
        metric = metric_name(item.name)
        lines.append(f"# HELP {metric} {HELP[item.name]}")
        lines.append(f"# TYPE {metric} {'counter' if item.name in COUNTERS else 'gauge'}")
        value = float(getattr(state, item.name))
        lines.append(f'{metric}{{{LABEL}="{name}"}} {int(value) if value.is_integer() else repr(value)}')
    return "\n".join(lines) + "\n"


def read_state(path: str, name: str) -> tuple[JobState, str]:
    """The state in the job's previous file, and why it was not usable ("" when it was, or was absent)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            text = file.read(1 << 20)
    except FileNotFoundError:
        return JobState(), ""
    except OSError as err:
        return JobState(), f"cannot read {path} ({err.strerror or err})"
    try:
        families = parse(text)
    except TextFormatError as err:
        return JobState(), f"{path} is corrupt ({err})"
    values = {}
    for item in fields(JobState):
        family = families.get(metric_name(item.name))
        samples = [m.value for m in family.metrics if m.labels == {LABEL: name}] if family else []
        if len(samples) != 1 or not math.isfinite(samples[0]) or samples[0] < 0:
            return JobState(), f"{path} is corrupt (no valid {metric_name(item.name)} for job_name={name!r})"
        values[item.name] = samples[0]
    return JobState(**values), ""


def write_atomically(path: str, text: str) -> None:
    """Replace `path` with `text` so that a reader sees the old file or the new, never a part of one."""
    directory, base = os.path.split(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fchmod(file.fileno(), 0o644)  # mkstemp's 0600 would hide it from an exporter running as another user
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory_fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory_fd)  # the rename itself survives a crash
    finally:
        os.close(directory_fd)


def say(message: str) -> None:
    print(f"pulse-exporter job: {message}", file=sys.stderr, flush=True)


class JobFiles:
    """The job's metrics file and its two locks in the textfile directory."""

    def __init__(self, directory: str, name: str) -> None:
        self.directory = directory
        self.name = name
        self.path = os.path.join(directory, f"pulse_job_{name}.prom")
        self.run_lock_path = os.path.join(directory, f".pulse_job_{name}.lock")  # held for the whole run
        self.state_lock_path = os.path.join(directory, f".pulse_job_{name}.state.lock")  # held to update the file
        self.usable = True  # False once writing failed: said once, the job goes on

    @contextlib.contextmanager
    def updating(self) -> Iterator[None]:
        fd = _lock(self.state_lock_path, blocking=True)
        try:
            yield
        finally:
            os.close(fd)

    def update(self, change: dict[str, float]) -> JobState | None:
        """Read the previous state, apply `change`, write it back; None (said once) when it cannot be written.
        A counter named in `change` is incremented by that much; other fields are set."""
        if not self.usable:
            return None
        try:
            with self.updating():
                state, problem = read_state(self.path, self.name)
                if problem:
                    say(f"{problem}; counters start afresh")
                values = {
                    key: getattr(state, key) + delta if key in COUNTERS else delta for key, delta in change.items()
                }
                new = replace(state, **values)
                write_atomically(self.path, render(self.name, new))
                return new
        except OSError as err:
            self.usable = False
            say(f"cannot write the job's metrics in {self.directory}: {err.strerror or err}; the job runs without them")
            return None


def _lock(path: str, *, blocking: bool) -> int:
    """An exclusive flock on `path` (created if need be), as an open descriptor: closing it unlocks.
    BlockingIOError when taken and not `blocking`. The kernel drops the lock when its holder dies, so a
    crashed run leaves none behind, and the job does not inherit the descriptor (Python's default), so
    a daemon it starts holds no lock."""
    # O_NOFOLLOW: a symlink planted in a shared directory must not make a root job create files elsewhere.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BaseException:
        os.close(fd)
        raise
    return fd


def run(name: str, command: Sequence[str], directory: str, timeout: float | None = None) -> int:
    """Run `command` as job `name`, recording it in `directory`; the exit code to exit with."""
    validate_name(name)
    files = JobFiles(directory, name)
    with contextlib.suppress(OSError):
        os.makedirs(directory, exist_ok=True)
    try:
        lock_fd = _lock(files.run_lock_path, blocking=False)
    except BlockingIOError:
        holder = _lock_holder(files.run_lock_path)
        say(f"{name} is still running{holder}; this run is skipped (exit code {EXIT_OVERLAP})")
        files.update({"skipped_total": 1})
        return EXIT_OVERLAP
    except OSError as err:
        say(f"cannot lock {files.run_lock_path} ({err.strerror or err}): runs of {name} may overlap")
        lock_fd = -1
    try:
        if lock_fd >= 0:
            with contextlib.suppress(OSError):  # who holds it, for the message of a refused run
                os.ftruncate(lock_fd, 0)
                os.pwrite(lock_fd, f"{os.getpid()} {time.time():.0f}\n".encode(), 0)
        return _run_locked(files, command, timeout)
    finally:
        if lock_fd >= 0:
            os.close(lock_fd)


def _lock_holder(path: str) -> str:
    try:
        with open(path, encoding="ascii") as file:
            pid, started = file.read().split()
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(started)))
        return f" (pid {int(pid)}, since {since})"
    except (OSError, ValueError):
        return ""


def _run_locked(files: JobFiles, command: Sequence[str], timeout: float | None) -> int:
    started_at = time.time()
    files.update({"running": 1, "last_start_timestamp_seconds": started_at})
    started = time.monotonic()
    received: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        try:
            child = subprocess.Popen(list(command))
        except FileNotFoundError:
            say(f"{command[0]}: command not found")
            code = EXIT_NOT_FOUND
        except OSError as err:
            say(f"{command[0]}: cannot run it: {err.strerror or err}")
            code = EXIT_CANNOT_RUN
        else:
            if received:  # a signal came before the child existed
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(received[-1])
            code = _wait(child, timeout)
        ended_at = time.time()
        change = {
            "running": 0.0,
            "last_end_timestamp_seconds": ended_at,
            "last_duration_seconds": time.monotonic() - started,
            "last_exit_code": float(code),
            "runs_total": 1.0,
            "failures_total": 1.0 if code else 0.0,
        }
        if code == 0:
            change["last_success_timestamp_seconds"] = ended_at
        files.update(change)  # still under the handlers: a late SIGTERM cannot cut the outcome's write short
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _wait(child: subprocess.Popen[bytes], timeout: float | None) -> int:
    try:
        returncode = child.wait(timeout)
    except subprocess.TimeoutExpired:
        say(f"timed out after {timeout:g}s; sending SIGTERM (SIGKILL in {KILL_GRACE_SECONDS:g}s)")
        child.terminate()
        try:
            child.wait(KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        return EXIT_TIMEOUT
    return 128 - returncode if returncode < 0 else returncode
