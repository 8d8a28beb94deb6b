"""`pulse-exporter incidents ...` on a journal on disk: the table, the details, JSON, acknowledging and
annotating, and one-line errors with their documented exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from exporter.cli import main
from exporter.incidents.cli import duration, parse_since
from exporter.incidents.journal import Journal, sqlite_url
from exporter.incidents.model import AlertNotice

NOW = 1_800_000_000.0
DOWN = {"alertname": "ShopDown", "severity": "critical", "team": "web", "service": "shop"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    database = sqlite_url(tmp_path / "incidents.db")
    path = tmp_path / "pulse.yml"
    path.write_text(yaml.safe_dump({"incidents": {"enabled": True, "database": database}}))
    with Journal(database) as journal:
        started = NOW - 2 * 3600
        journal.record([AlertNotice("a1", "firing", DOWN, {"summary": "Shop down"}, started, None)], started + 45)
        resolved = AlertNotice("b2", "resolved", {**DOWN, "alertname": "SlowCheckout"}, {}, NOW - 600, NOW - 300)
        journal.record([resolved], NOW - 290)
    return path


def run(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["incidents", *args, f"--config.file={config}"])
    out, err = capsys.readouterr()
    return code, out, err


def test_durations_read_like_people_write_them() -> None:
    assert [duration(s) for s in (42, 307, 4980, 3 * 86400 + 4 * 3600, None)] == ["42s", "5m07s", "1h23m", "3d4h", "-"]
    assert parse_since("24h", NOW) == NOW - 86400
    assert parse_since("2027-01-15T08:00:00+00:00", NOW) == 1_800_000_000.0


def test_list_show_ack_and_annotate(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(config, capsys, "list")
    header, second, first, total = out.splitlines()
    assert code == 0
    columns = ["ID", "STARTED", "DURATION", "STATE", "ACKNOWLEDGED BY", "SEVERITY", "SERVICE", "ALERT"]
    assert header.split() == " ".join(columns).split()
    assert second.split()[3:] == ["5m00s", "resolved", "-", "critical", "shop", "SlowCheckout"]  # date, time local
    assert first.split()[4:] == ["open", "-", "critical", "shop", "ShopDown"]  # its duration: so far
    assert (second.split()[0], first.split()[0]) == ("2", "1")
    assert total.startswith("(2 incidents; times in ")
    assert run(config, capsys, "list", "--open")[1].count("ShopDown") == 1
    assert "SlowCheckout" not in run(config, capsys, "list", "--open")[1]

    assert run(config, capsys, "ack", "1", "--by", "alice")[:2] == (0, "incident 1 acknowledged by alice\n")
    assert run(config, capsys, "ack", "1", "--by", "bob")[1].startswith("incident 1 was acknowledged already, by alice")
    assert run(config, capsys, "annotate", "1", "--cause", "expired certificate")[0] == 0
    assert run(config, capsys, "annotate", "1", "--resolution", "renewed it")[0] == 0

    code, out, _ = run(config, capsys, "show", "1")
    assert code == 0
    assert "time to detect 45s" in out
    assert "by alice" in out
    assert "Cause:      expired certificate" in out
    assert "Resolution: renewed it" in out
    shown = json.loads(run(config, capsys, "show", "1", "--json")[1])
    assert (shown["acknowledged_by"], shown["time_to_detect_seconds"], shown["open"]) == ("alice", 45, True)
    assert shown["started_at"] == "2027-01-15T06:00:00.000Z"
    listed = json.loads(run(config, capsys, "list", "--json")[1])
    assert [i["alertname"] for i in listed] == ["SlowCheckout", "ShopDown"]


def test_errors_are_one_line_with_their_exit_code(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    where = sqlite_url(tmp_path / "incidents.db")
    assert run(config, capsys, "show", "99") == (3, "", f"pulse-exporter incidents: no incident 99 in {where}\n")
    off = tmp_path / "off.yml"
    off.write_text("incidents: {enabled: false}\n")
    code, _, err = run(off, capsys, "list")
    assert code == 1
    assert err == f"pulse-exporter incidents: the incident journal is off in {off}: set incidents.enabled: true\n"
    unreachable = tmp_path / "pg.yml"
    unreachable.write_text("incidents: {enabled: true, database: 'postgresql+psycopg://pulse:s3cret@127.0.0.1:1/j'}\n")
    code, _, err = run(unreachable, capsys, "list")
    assert code == 1
    assert err.startswith("pulse-exporter incidents: postgresql+psycopg://pulse:***@127.0.0.1:1/j: cannot open")
    assert err.count("\n") == 1
    assert "s3cret" not in err
    code, _, err = run(config, capsys, "sync")
    assert code == 1
    assert err.endswith(": sync reads silences from Alertmanager: set alertmanager.url in the config\n")
    unreachable_alertmanager = tmp_path / "am.yml"
    unreachable_alertmanager.write_text(
        yaml.safe_dump({**yaml.safe_load(config.read_text()), "alertmanager": {"url": "http://127.0.0.1:1"}})
    )
    code, _, err = run(unreachable_alertmanager, capsys, "sync")
    assert code == 1
    assert err.startswith("pulse-exporter incidents: http://127.0.0.1:1/api/v2/alerts: cannot reach Alertmanager")
    assert err.count("\n") == 1
    with pytest.raises(SystemExit) as usage:
        run(config, capsys, "annotate", "1")
    assert usage.value.code == 2
