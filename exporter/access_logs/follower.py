"""Following log files the way `tail -F` does, by polling.

A file is known by its identity, (st_dev, st_ino), not its name, and held open, so:
- rotation by rename and create: the renamed file is read to its end (what was written before the
  rename), then dropped; the new file at the path is read from its start. A renamed file that still
  matches a glob (`access.log*` catching `access.log.1`) is simply followed under its new name;
- copytruncate: the file shrank below the offset, so it is read again from its start;
- a file that appears later (or matches a glob later) is read from its start; a deleted one is read to
  its end through the open handle, then dropped;
- on the first scan, files are read from their end (`from_start` reads them from the beginning).

A line is counted when its newline arrives: a partial last line is held until then (and counted when
its file is dropped). A line longer than `max_line_length` is never buffered: it is counted as one
unparsed line and its bytes are skipped up to the next newline. Compressed rotations (`.gz`, ...) that
a glob matches are skipped. An unreadable path (a directory, a FIFO, no permission) is reported once,
with a count and a warning, and retried at each scan; it never stops the other files.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from exporter.access_logs.series import LogStats

log = logging.getLogger(__name__)

Identity = tuple[int, int]
# (complete lines, lines over the length cap, bytes read)
Consume = Callable[[Sequence[bytes], int, int], None]

CHUNK_SIZE = 1 << 20
# Chunks read from one file per poll: a huge backlog (from_start on a big log) is read in slices, so the
# other logs' files and a stop request wait for one slice, not the whole file.
CHUNKS_PER_POLL = 16
# Files one log follows at most (each holds a descriptor): a glob that catches a whole directory tree
# must not exhaust them. Beyond it, paths are reported as problems (of which a bounded number are kept).
MAX_FILES = 512
MAX_PROBLEMS = 100
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z")


@dataclass
class FollowedFile:
    path: str
    identity: Identity
    handle: BinaryIO
    offset: int
    partial: bytes = b""
    skipping: bool = False  # inside an overlong line: its bytes are dropped up to the next newline


class Follower:
    def __init__(self, log_name: str, patterns: Sequence[str], from_start: bool, max_line_length: int) -> None:
        self.log_name = log_name
        self.patterns = tuple(patterns)
        self.from_start = from_start
        self.max_line_length = max_line_length
        self.files: dict[Identity, FollowedFile] = {}
        self.problems: dict[str, str] = {}  # path -> why it cannot be read
        self._previous_problems: dict[str, str] = {}  # as of the previous poll
        self.started = False  # the first scan is done: files found later are new
        self._warned_empty = False

    def reconfigure(self, patterns: Sequence[str], from_start: bool, max_line_length: int) -> None:
        """A reload's new settings; open files and offsets are kept (files no longer matched are dropped at
        the next poll, after they are read to their end)."""
        self.patterns, self.from_start, self.max_line_length = tuple(patterns), from_start, max_line_length

    def close(self) -> None:
        for followed in self.files.values():
            followed.handle.close()
        self.files.clear()

    def poll(self, consume: Consume, stats: LogStats) -> bool:
        """Read what was written since the last poll; True when a file has more to read right away."""
        self._previous_problems, self.problems = self.problems, {}
        found = self._scan(stats)
        pending = False
        for identity, followed in list(self.files.items()):
            if identity not in found:  # renamed away or deleted: what was written before is still read
                while self._read(followed, consume, stats):
                    pass
                self._drop(followed, consume, stats)
                stats.rotations += 1
        for identity, (path, size) in found.items():
            followed_now = self.files.get(identity)
            if followed_now is None:
                followed_now = self._open(path, identity, size, stats)
                if followed_now is None:
                    continue
            elif size < followed_now.offset:  # copytruncate
                log.info(
                    "access log file truncated; reading it from the start", extra={"log": self.log_name, "path": path}
                )
                followed_now.handle.seek(0)
                followed_now.offset, followed_now.partial, followed_now.skipping = 0, b"", False
                stats.truncations += 1
            followed_now.path = path
            pending |= self._read(followed_now, consume, stats)
        self.started = True
        for path in self._previous_problems.keys() - self.problems.keys():
            log.info("access log file readable again, or gone", extra={"log": self.log_name, "path": path})
        stats.files_followed = len(self.files)
        stats.files_unreadable = len(self.problems)
        self._warn_when_empty()
        return pending

    def _scan(self, stats: LogStats) -> dict[Identity, tuple[str, int]]:
        found: dict[Identity, tuple[str, int]] = {}
        problems: dict[str, str] = {}
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]:
                if path.endswith(COMPRESSED_SUFFIXES):
                    continue
                try:
                    info = os.stat(path)
                except FileNotFoundError:
                    continue  # not there (yet), or gone between the glob and the stat
                except OSError as err:
                    problems[path] = err.strerror or str(err)
                    continue
                if not stat.S_ISREG(info.st_mode):  # a FIFO would block the open; a directory cannot be read
                    problems[path] = "not a regular file"
                    continue
                identity = (info.st_dev, info.st_ino)
                if len(found) >= MAX_FILES and identity not in found:
                    problems[path] = f"more than {MAX_FILES} files match this log; not followed"
                    continue
                found.setdefault(identity, (path, info.st_size))
        for path, reason in problems.items():
            self._problem(path, reason, stats)
        return found

    def _problem(self, path: str, reason: str, stats: LogStats) -> None:
        """A path that cannot be read: counted and logged when it starts (or its reason changes), not at
        every poll."""
        if path not in self.problems and len(self.problems) >= MAX_PROBLEMS:
            return
        if self._previous_problems.get(path) != reason and self.problems.get(path) != reason:
            stats.read_errors += 1
            log.warning("cannot read access log file", extra={"log": self.log_name, "path": path, "err": reason})
        self.problems[path] = reason

    def _open(self, path: str, identity: Identity, size: int, stats: LogStats) -> FollowedFile | None:
        try:
            handle = open(path, "rb", buffering=0)  # noqa: SIM115 - held open across polls, closed in _drop
        except OSError as err:
            self._problem(path, err.strerror or str(err), stats)
            return None
        offset = size if not self.started and not self.from_start else 0
        if offset:
            handle.seek(offset)
        followed = FollowedFile(path, identity, handle, offset)
        self.files[identity] = followed
        log.info(
            "following access log file",
            extra={"log": self.log_name, "path": path, "from": "end" if offset else "start"},
        )
        return followed

    def _read(self, followed: FollowedFile, consume: Consume, stats: LogStats) -> bool:
        """Read up to CHUNKS_PER_POLL chunks; True when the file may have more."""
        for _ in range(CHUNKS_PER_POLL):
            try:
                data = followed.handle.read(CHUNK_SIZE)
            except OSError as err:
                self._problem(followed.path, err.strerror or str(err), stats)
                self._drop(followed, consume, stats)
                return False
            if not data:
                return False
            followed.offset += len(data)
            self._feed(followed, data, consume)
        return True

    def _feed(self, followed: FollowedFile, data: bytes, consume: Consume) -> None:
        nbytes = len(data)
        overlong = 0
        if followed.skipping:
            newline = data.find(b"\n")
            if newline < 0:
                consume((), 0, nbytes)
                return
            data = data[newline + 1 :]
            followed.skipping = False
        if followed.partial:
            data = followed.partial + data
        lines = data.split(b"\n")
        followed.partial = lines.pop()
        cap = self.max_line_length
        if len(followed.partial) > cap:
            overlong += 1
            followed.partial, followed.skipping = b"", True
        if lines and max(map(len, lines)) > cap:
            kept = [line for line in lines if len(line) <= cap]
            overlong += len(lines) - len(kept)
            lines = kept
        consume(lines, overlong, nbytes)

    def _drop(self, followed: FollowedFile, consume: Consume, stats: LogStats) -> None:
        """Stop following: the held partial line is the file's last line (its writer is done with it)."""
        if followed.partial:
            consume((followed.partial,), 0, 0)
            followed.partial = b""
        followed.handle.close()
        self.files.pop(followed.identity, None)
        log.info("stopped following access log file", extra={"log": self.log_name, "path": followed.path})

    def _warn_when_empty(self) -> None:
        if self.files or self.problems:
            self._warned_empty = False
        elif not self._warned_empty:
            self._warned_empty = True
            log.warning(
                "no file matches the access log's paths (yet); they are checked at every poll",
                extra={"log": self.log_name, "paths": list(self.patterns)},
            )
