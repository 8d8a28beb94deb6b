"""Following access logs the way `tail -F` does: every rotation style, files that come and go, lines
cut short or far too long, and paths that cannot be read. Each test drives the log poll by poll, so
what a poll sees is exactly what the test wrote before it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from exporter.access_logs import follower
from exporter.access_logs.collector import AccessLog
from tests.access_logs import counts, nginx_line, one_log, requests_total, write_lines


def poll_all(log: AccessLog) -> None:
    while log.poll():
        pass


def test_a_file_present_at_start_is_read_from_its_end(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    write_lines(path, nginx_line() * 3)
    log = one_log(path)
    poll_all(log)
    assert log.stats.files_followed == 1
    assert log.stats.lines_read == 0
    write_lines(path, nginx_line(code=404) * 2)
    poll_all(log)
    assert log.stats.lines_read == 2
    assert requests_total(log) == 2


def test_from_start_reads_what_is_already_there(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    write_lines(path, nginx_line() * 3)
    log = one_log(path, from_start=True)
    poll_all(log)
    assert (log.stats.lines_read, log.stats.lines_parsed) == (3, 3)


def test_rotation_by_rename_and_create_reads_the_old_files_tail_and_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.touch()
    log = one_log(path)
    poll_all(log)
    write_lines(path, nginx_line() * 2)
    poll_all(log)
    write_lines(path, nginx_line(code=500))  # written just before the rotation, not yet read
    path.rename(tmp_path / "access.log.1")
    write_lines(path, nginx_line(code=201) * 2)
    poll_all(log)
    assert log.stats.lines_read == 5
    assert log.stats.rotations == 1
    assert log.stats.files_followed == 1
    codes = {dict(labels)["code"]: value for labels, value in counts(log)["http_requests_total"].items()}
    assert codes == {"200": 2, "500": 1, "201": 2}


def test_a_rotated_file_still_matched_by_the_glob_is_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.touch()
    log = one_log(tmp_path / "access.log*")
    poll_all(log)
    write_lines(path, nginx_line() * 2)
    poll_all(log)
    path.rename(tmp_path / "access.log.1")
    write_lines(tmp_path / "access.log.1", nginx_line())  # a late write to the renamed file
    write_lines(path, nginx_line())
    poll_all(log)
    assert log.stats.lines_read == 4
    assert log.stats.files_followed == 2
    assert log.stats.rotations == 0


def test_compressed_rotations_matched_by_a_glob_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "access.log.2.gz").write_bytes(b"\x1f\x8b\x08\x00 binary")
    (tmp_path / "access.log").touch()
    log = one_log(tmp_path / "access.log*", from_start=True)
    poll_all(log)
    assert log.stats.files_followed == 1
    assert log.stats.lines_read == 0


def test_copytruncate_is_read_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.touch()
    log = one_log(path)
    poll_all(log)
    write_lines(path, nginx_line() * 3)
    poll_all(log)
    shutil.copy(path, tmp_path / "access.log.1")
    with path.open("r+") as file:
        file.truncate(0)
    write_lines(path, nginx_line(code=404) * 2)
    poll_all(log)
    assert log.stats.lines_read == 5
    assert log.stats.truncations == 1
    assert log.stats.files_followed == 1


def test_a_file_that_appears_later_is_read_from_its_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "later.log"
    log = one_log(path)
    poll_all(log)
    poll_all(log)
    assert log.stats.files_followed == 0
    assert caplog.text.count("no file matches") == 1  # one line, not one per poll
    write_lines(path, nginx_line() * 2)
    poll_all(log)
    assert (log.stats.files_followed, log.stats.lines_read) == (1, 2)


def test_a_deleted_file_is_read_to_its_end_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.touch()
    log = one_log(path)
    poll_all(log)
    write_lines(path, nginx_line() * 2)
    path.unlink()
    poll_all(log)
    assert log.stats.lines_read == 2
    assert log.stats.files_followed == 0
    assert not log.follower.files


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.touch()
    log = one_log(path)
    poll_all(log)
    line = nginx_line(code=404)
    write_lines(path, line[:30])
    poll_all(log)
    assert log.stats.lines_read == 0
    write_lines(path, line[30:])
    poll_all(log)
    assert (log.stats.lines_read, log.stats.lines_parsed) == (1, 1)


def test_an_overlong_line_counts_as_one_unparsed_line_and_is_not_buffered(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.touch()
    log = one_log(path, max_line_length=256)
    poll_all(log)
    write_lines(path, "x" * 300)  # longer than the cap before its newline arrives
    poll_all(log)
    assert log.stats.lines_unparsed == 1
    assert log.follower.files[next(iter(log.follower.files))].partial == b""
    write_lines(path, "y" * 5000 + "\n" + "z" * 400 + "\n" + nginx_line())
    poll_all(log)
    assert (log.stats.lines_read, log.stats.lines_unparsed, log.stats.lines_parsed) == (3, 2, 1)


def test_unreadable_paths_are_reported_once_and_the_readable_ones_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Tests run as root, for whom chmod 000 changes nothing: a directory and a FIFO cannot be read by anyone.
    (tmp_path / "a-directory.log").mkdir()
    os.mkfifo(tmp_path / "a-fifo.log")  # opening it would block: it must never be opened
    write_lines(tmp_path / "good.log", nginx_line())
    log = one_log(tmp_path / "*.log", from_start=True)
    for _ in range(3):
        poll_all(log)
    assert log.stats.files_followed == 1
    assert log.stats.files_unreadable == 2
    assert log.stats.read_errors == 2
    assert log.stats.lines_read == 1
    assert caplog.text.count("cannot read access log file") == 2
    (tmp_path / "a-directory.log").rmdir()
    poll_all(log)
    assert log.stats.files_unreadable == 1


def test_a_format_mismatch_is_a_rising_count_and_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "access.log"
    path.touch()
    log = one_log(path)
    poll_all(log)
    for _ in range(3):
        write_lines(path, '{"json": "not combined"}\n' * 10)
        poll_all(log)
    assert log.stats.lines_unparsed == 30
    assert caplog.text.count("do not match the log's format") == 1
    (record,) = [r for r in caplog.records if "do not match" in r.getMessage()]
    assert record.line == '{"json": "not combined"}'  # type: ignore[attr-defined]  # an `extra` field


def test_many_chunks_of_backlog_are_read_in_slices(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    line = nginx_line()
    write_lines(path, line * (40 * (1 << 20) // len(line)))  # 40 MiB: more than one poll's slice
    log = one_log(path, from_start=True)
    assert log.poll() is True
    poll_all(log)
    assert log.stats.lines_read == 40 * (1 << 20) // len(line)
    assert log.stats.bytes_read == path.stat().st_size


def test_a_glob_matching_too_many_files_follows_a_bounded_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follower, "MAX_FILES", 3)
    for n in range(5):
        write_lines(tmp_path / f"{n}.log", nginx_line())
    log = one_log(tmp_path / "*.log", from_start=True)
    poll_all(log)
    assert (log.stats.files_followed, log.stats.files_unreadable, log.stats.lines_read) == (3, 2, 3)


def test_a_reload_continues_from_the_offsets_and_keeps_counts_unless_buckets_or_service_change(
    tmp_path: Path,
) -> None:
    path = tmp_path / "access.log"
    write_lines(path, nginx_line() * 3)
    before = one_log(path, from_start=True)
    poll_all(before)
    same = one_log(path, routes=[{"name": "home", "path": "/"}])
    same.take_over(before)
    write_lines(path, nginx_line())
    poll_all(same)
    assert same.stats.lines_read == 4
    assert requests_total(same) == 4  # 3 under route other, 1 under the new route home

    rebucketed = one_log(path, buckets=[1.0])
    rebucketed.take_over(same)
    write_lines(path, nginx_line())
    poll_all(rebucketed)
    assert rebucketed.stats.lines_read == 5  # no line read twice
    assert requests_total(rebucketed) == 1  # the histograms could not continue: the series started again
