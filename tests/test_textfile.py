"""The textfile collector as a specification: node_exporter 1.5's directory semantics and names, so the
`.prom` files cron scripts already write work unchanged, and hostile files never hurt a scrape.

Part A scrapes one directory of files (good, malformed, timestamped, disagreeing, duplicated, escaped,
a dangling symlink) with Debian's node_exporter and with Pulse, and compares every sample, HELP and
TYPE. Part B covers what Pulse does on purpose differently or beyond: FIFOs, directories and huge files
refused without blocking, files re-read only when they change, Pulse's own names winning a clash, an
exposition promtool finds clean.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

from exporter.collectors.host import textfile
from exporter.collectors.host.textfile import TextfileCollector, TextfileSettings
from exporter.exposition import encode_text
from exporter.textformat import ParsedFamily, TextFormatError, format_float, parse
from tests.helpers import (
    ByName,
    Labels,
    RunningExporter,
    StartExporter,
    StartNodeExporter,
    node_exporter_text,
    parse_by_name,
    require_binary,
    samples_of,
)

pytestmark = pytest.mark.integration

# One directory exercising node_exporter's rules; each file's name says what it tests.
DIRECTORY = {
    "a_good.prom": (
        "# HELP shop_backup_size_bytes Size of the last backup.\n"
        "# TYPE shop_backup_size_bytes gauge\n"
        'shop_backup_size_bytes{db="shop"} 1.5e+09\n'
        'shop_backup_size_bytes{db="crm"} 42\n'
        "# TYPE shop_exports_total counter\n"
        "shop_exports_total 7\n"
    ),
    "b_malformed.prom": "this is not a metric\n",
    "c_timestamped.prom": "# TYPE stamped gauge\nstamped 1 1700000000000\n",
    "d_other_help.prom": '# HELP shop_backup_size_bytes Another help.\nshop_backup_size_bytes{db="erp"} 3\n',
    "e_repeats_a_series.prom": (
        "# HELP shop_backup_size_bytes Size of the last backup.\n"
        "# TYPE shop_backup_size_bytes gauge\n"
        'shop_backup_size_bytes{db="shop"} 999\n'
        'shop_backup_size_bytes{db="billing"} 4\n'
    ),
    "f1_no_help.prom": "unhelped 1\n",
    "f2_no_help.prom": 'unhelped{x="2"} 2\n',
    "g1_typed.prom": "# TYPE retyped gauge\nretyped 1\n",
    "g2_typed.prom": "# TYPE retyped untyped\nretyped 2\n",
    "h_label_padding.prom": 'padded{a="1"} 1\npadded{b="2"} 2\n',
    "i_escapes.prom": '# HELP escaped Back\\\\slash and\\nnewline.\nescaped{v="q\\"uote \\\\ back\\nline"} 1\n',
    "j_no_final_newline.prom": "unterminated 1",
    "k_second_type.prom": "# TYPE twice gauge\n# TYPE twice gauge\ntwice 1\n",
    "l_bad_escape.prom": 'bad_escape{v="\\q"} 1\n',
    "m_histogram_summary.prom": (
        "# TYPE latency_seconds histogram\n"
        'latency_seconds_bucket{le="0.5"} 3\n'
        'latency_seconds_bucket{le="1.0"} 5\n'
        "latency_seconds_sum 2.5\n"
        "latency_seconds_count 6\n"
        "# TYPE rpc_seconds summary\n"
        'rpc_seconds{quantile="0.99"} 0.3\n'
        "rpc_seconds_sum 9\n"
        "rpc_seconds_count 30\n"
    ),
    "n_special_values.prom": "plus_inf +Inf\nminus_inf -Infinity\nnot_a_number NaN\nsci 1e-07\n",
    "o_spacing.prom": '# a comment\n\n  \tspaced  {  a = "1" , }   5\n',
    "p_trailing_blank.prom": "trailing 1 \n",
    "q_underscore_number.prom": "underscored 1_000\n",
    "r_noncontiguous.prom": 'split{x="1"} 1\nbetween 0\nsplit{x="2"} 2\n',
    "s_duplicate_label.prom": 'dup_label{a="1",a="2"} 1\n',
    "t_empty.prom": "",
    "not_a_prom_file.txt": "ignored 1\n",
    ".hidden.prom.tmp": "ignored_too 1\n",
}
BROKEN = {
    "b_malformed.prom",
    "c_timestamped.prom",
    "j_no_final_newline.prom",
    "k_second_type.prom",
    "l_bad_escape.prom",
    "p_trailing_blank.prom",
    "q_underscore_number.prom",
    "s_duplicate_label.prom",
    "u_dangling.prom",
}


def write_directory(directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in DIRECTORY.items():
        (directory / name).write_text(text)
    (directory / "u_dangling.prom").symlink_to(directory / "nowhere.prom")
    (directory / "v_link.prom").symlink_to(directory / "h_label_padding.prom")  # followed: its series repeat
    return directory


def help_and_type(text: str, names: set[str]) -> dict[str, tuple[str, str]]:
    """Family -> (HELP, TYPE) as written, for the families named."""
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    return {name: (helps.get(name, ""), types.get(name, "")) for name in names if name in types}


def comparable(series: dict[Labels, float]) -> dict[Labels, float | str]:
    """NaN is not equal to itself; as text it is."""
    return {labels: "NaN" if math.isnan(value) else value for labels, value in series.items()}


def textfile_scrape(exporter: RunningExporter) -> str:
    response = exporter.get("/metrics", params={"collect[]": "host.textfile"}, headers={"Accept": "text/plain"})
    response.raise_for_status()
    return response.text


def config(directory: Path | str, **settings: object) -> str:
    extra = "".join(f"\n      {key}: {value}" for key, value in settings.items())
    return f"collectors:\n  host:\n    textfile:\n      directory: '{directory}'{extra}\n"


def collect(directory: Path, **settings: object) -> tuple[str, ByName, TextfileCollector]:
    collector = TextfileCollector(TextfileSettings(directory=str(directory), **settings))
    text = encode_text(collector.collect_blocking()).decode()
    return text, parse_by_name(text), collector


# ------------------------------------------------------------------------------------ node_exporter


@pytest.fixture
def node_exporter_textfile(start_node_exporter: StartNodeExporter) -> Callable[[Path], str]:
    """Debian's node_exporter with only its textfile collector, on `directory`; returns one scrape."""

    def scrape(directory: Path) -> str:
        flags = ["--collector.disable-defaults", "--collector.textfile", f"--collector.textfile.directory={directory}"]
        return node_exporter_text(start_node_exporter(*flags))

    return scrape


# Part A ----------------------------------------------------------------------------------------------


def test_the_same_directory_gives_node_exporters_samples_help_and_types(
    tmp_path: Path, start_exporter: StartExporter, node_exporter_textfile: Callable[[Path], str]
) -> None:
    directory = write_directory(tmp_path / "textfile")
    reference_text = node_exporter_textfile(directory)
    pulse_text = textfile_scrape(start_exporter(config(directory)))

    reference, pulse = parse_by_name(reference_text), parse_by_name(pulse_text)
    file_families = {name for name in reference if not re.match(r"(node|go|process|promhttp)_", name)}
    assert "shop_backup_size_bytes" in file_families, reference_text  # the comparison has work to do
    for name in sorted(file_families | {"node_textfile_mtime_seconds", "node_textfile_scrape_error"}):
        ours, theirs = comparable(pulse.get(name, {})), comparable(reference[name])
        assert ours == theirs, f"{name}: pulse {ours} != node_exporter {theirs}"
    assert not {name for name in pulse if not name.startswith(("node_", "pulse_", "process_", "python_"))} - set(
        reference
    ), "Pulse serves textfile samples node_exporter does not"

    families = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in file_families} | {"shop_exports_total"}
    assert help_and_type(pulse_text, families) == help_and_type(reference_text, families)

    # What is read and what is refused: a file name in the mtime label is a file read.
    read = {Path(labels[0][1]).name for labels in reference["node_textfile_mtime_seconds"]}
    prom_files = {n for n in DIRECTORY if n.endswith(".prom") and not n.startswith(".")} | {
        "u_dangling.prom",
        "v_link.prom",
    }
    assert read == prom_files - BROKEN
    assert pulse["node_textfile_scrape_error"] == {(): 1.0}


def test_a_clean_directory_reports_no_error_and_whole_second_mtimes(
    tmp_path: Path, start_exporter: StartExporter, node_exporter_textfile: Callable[[Path], str]
) -> None:
    directory = tmp_path / "clean"
    directory.mkdir()
    (directory / "backup.prom").write_text(DIRECTORY["a_good.prom"])
    os.utime(directory / "backup.prom", ns=(1_700_000_000_750_000_000,) * 2)
    reference = parse_by_name(node_exporter_textfile(directory))
    pulse = parse_by_name(textfile_scrape(start_exporter(config(directory))))
    assert pulse["node_textfile_scrape_error"] == reference["node_textfile_scrape_error"] == {(): 0.0}
    assert pulse["node_textfile_mtime_seconds"] == reference["node_textfile_mtime_seconds"]
    assert pulse["node_textfile_mtime_seconds"] == {(("file", str(directory / "backup.prom")),): 1_700_000_000.0}


def test_a_missing_directory_is_a_scrape_error_as_in_node_exporter(
    tmp_path: Path, start_exporter: StartExporter, node_exporter_textfile: Callable[[Path], str]
) -> None:
    missing = tmp_path / "missing"
    reference = parse_by_name(node_exporter_textfile(missing))
    exporter = start_exporter(config(missing))
    pulse = parse_by_name(textfile_scrape(exporter))
    assert pulse["node_textfile_scrape_error"] == reference["node_textfile_scrape_error"] == {(): 1.0}
    assert "node_textfile_mtime_seconds" not in pulse
    assert pulse["pulse_exporter_collector_success"][(("collector", "host.textfile"),)] == 1  # as node_exporter's
    missing.mkdir()  # created later: read from the next scrape on
    (missing / "late.prom").write_text("late 1\n")
    exporter.wait_for_samples(lambda s: s.get("late") == 1 and s["node_textfile_scrape_error"] == 0, "late file read")


# Part B ----------------------------------------------------------------------------------------------


def test_a_fifo_never_blocks_the_scrape(tmp_path: Path) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    (directory / "good.prom").write_text("good 1\n")
    os.mkfifo(directory / "pipe.prom")  # opening it for reading would wait for a writer
    os.mkdir(directory / "directory.prom")
    outcome: list[tuple[str, ByName, TextfileCollector]] = []
    worker = threading.Thread(target=lambda: outcome.append(collect(directory)), daemon=True)
    worker.start()
    worker.join(30)
    assert outcome, "the scrape blocked on the FIFO"
    _, samples, collector = outcome[0]
    assert samples["good"] == {(): 1.0}
    assert samples["node_textfile_scrape_error"] == {(): 1.0}
    assert [Path(labels[0][1]).name for labels in samples["node_textfile_mtime_seconds"]] == ["good.prom"]
    note = collector.status_note()
    assert note is not None
    assert f"{directory}/directory.prom: not a regular file" in note.text


def test_a_file_over_max_file_bytes_is_refused_unread_and_named(tmp_path: Path) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    (directory / "huge.prom").write_text("".join(f'big{{i="{i}"}} {i}\n' for i in range(200)))
    (directory / "small.prom").write_text("small 1\n")
    _, samples, collector = collect(directory, max_file_bytes=1000)
    assert "big" not in samples
    assert samples["small"] == {(): 1.0}
    assert samples["node_textfile_scrape_error"] == {(): 1.0}
    note = collector.status_note()
    assert note is not None
    assert note.text == f"{directory}/huge.prom: larger than max_file_bytes (1000 bytes)"
    assert collect(directory)[1]["node_textfile_scrape_error"] == {(): 0.0}  # the default, 4 MiB, takes it


def test_a_file_rewritten_in_place_is_read_again(tmp_path: Path) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    path = directory / "job.prom"
    path.write_text("progress 1\n")
    collector = TextfileCollector(TextfileSettings(directory=str(directory)))
    assert samples_of(collector.collect_blocking())["progress"] == 1
    assert samples_of(collector.collect_blocking())["progress"] == 1  # served from the cache
    with path.open("r+") as file:  # same size, same inode
        file.write("progress 2\n")
    assert samples_of(collector.collect_blocking())["progress"] == 2
    path.unlink()
    assert "progress" not in samples_of(collector.collect_blocking())


def test_label_values_with_newlines_quotes_and_backslashes_come_out_as_they_went_in(tmp_path: Path) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    (directory / "escapes.prom").write_text(DIRECTORY["i_escapes.prom"])
    text, samples, _ = collect(directory)
    assert samples["escaped"] == {(("v", 'q"uote \\ back\nline'),): 1.0}
    assert "# HELP escaped Back\\\\slash and\\nnewline.\n" in text


def test_a_counter_without_total_is_served_untyped_and_one_with_total_as_a_counter(tmp_path: Path) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    (directory / "counters.prom").write_text(
        "# TYPE legacy_count counter\nlegacy_count 3\n# TYPE new_total counter\nnew_total 4\n"
    )
    text, samples, _ = collect(directory)
    assert samples["legacy_count"] == {(): 3.0}
    assert samples["new_total"] == {(): 4.0}
    assert "# TYPE legacy_count untyped\n" in text
    assert "# TYPE new_total counter\n" in text


def test_a_textfile_metric_named_like_pulses_own_loses_to_it(tmp_path: Path, start_exporter: StartExporter) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    (directory / "clash.prom").write_text("node_load1 12345\npulse_exporter_config_last_reload_successful 7\nmine 1\n")
    exporter = start_exporter(config(directory) + "    loadavg: {enabled: true}\n")
    samples = exporter.samples()
    assert samples["mine"] == 1
    assert samples["node_load1"] != 12345
    assert samples["pulse_exporter_config_last_reload_successful"] == 1


def test_promtool_finds_the_merged_exposition_clean(tmp_path: Path, start_exporter: StartExporter) -> None:
    promtool = require_binary("promtool")
    directory = write_directory(tmp_path / "textfile")
    text = textfile_scrape(start_exporter(config(directory)))
    assert "shop_backup_size_bytes" in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    findings = (result.stdout + result.stderr).strip()
    # The files' own names are the files' business; the only lint promtool may raise is on them.
    own = [line for line in findings.splitlines() if line.split(" ", 1)[0].startswith(("node_textfile", "pulse_"))]
    assert result.returncode in (0, 3), findings
    assert not own, findings
    assert "error while linting" not in findings


def test_config_refuses_an_empty_directory_and_a_zero_size_limit(start_exporter: StartExporter, tmp_path: Path) -> None:
    for bad, field in (
        ("''", "collectors.host.textfile.directory"),
        ("/tmp\n      max_file_bytes: 0", "max_file_bytes"),
    ):
        path = tmp_path / "bad.yml"
        path.write_text(f"collectors:\n  host:\n    textfile:\n      directory: {bad}\n")
        exporter = start_exporter(None, f"--config.file={path}", "--config.check", wait=False)
        assert exporter.process.wait(30) == 1
        assert field in exporter.logs()
        assert "Traceback" not in exporter.logs()


# The parser on its own: what Go's expfmt refuses, this refuses ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a 1",  # no final newline
        "a 1 \n",  # a blank after the value
        "a +NaN\n",
        "a 0x10\n",
        "a 1e400\n",
        "a 1_0\n",
        'a{x="\\q"} 1\n',
        'a{x="1",x="2"} 1\n',
        'a{__name__="b"} 1\n',
        "# TYPE a gauge\n# TYPE a gauge\na 1\n",
        "a 1\n# TYPE a gauge\n",
        "# HELP a x\n# HELP a y\na 1\n",
        "# TYPE a gauge extra\na 1\n",
        "1a 1\n",
        'a{x="unterminated} 1\n',
        "a 1 1.5\n",
    ],
)
def test_the_parser_refuses_what_node_exporter_refuses(text: str) -> None:
    with pytest.raises(TextFormatError):
        parse(text)


def test_histogram_and_summary_samples_group_into_metrics() -> None:
    families = parse(DIRECTORY["m_histogram_summary.prom"])
    (histogram,) = families["latency_seconds"].metrics
    assert (histogram.buckets, histogram.sum, histogram.count) == ({0.5: 3, 1.0: 5}, 2.5, 6)
    (summary,) = families["rpc_seconds"].metrics
    assert (summary.quantiles, summary.sum, summary.count) == ({0.99: 0.3}, 9.0, 30)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (1e-05, "1e-05"),
        (100000.0, "100000"),
        (1e21, "1e+21"),
        (float("inf"), "+Inf"),
        (-2.5, "-2.5"),
    ],
)
def test_bucket_bounds_are_written_as_go_writes_them(value: float, text: str) -> None:
    assert format_float(value) == text


def test_an_unchanged_file_is_not_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    for index in range(3):
        (directory / f"file{index}.prom").write_text(f"series_{index} {index}\n")
    parsed: list[str] = []

    def counting_parse(text: str) -> dict[str, ParsedFamily]:
        parsed.append(text)
        return parse(text)

    monkeypatch.setattr(textfile, "parse", counting_parse)  # the real parser, counted
    collector = TextfileCollector(TextfileSettings(directory=str(directory)))
    first = samples_of(collector.collect_blocking())
    assert len(parsed) == 3
    assert samples_of(collector.collect_blocking()) == first
    assert len(parsed) == 3
    (directory / "file1.prom").write_text("series_1 11\n")
    assert samples_of(collector.collect_blocking())["series_1"] == 11
    assert parsed[3:] == ["series_1 11\n"]


def test_the_openmetrics_exposition_of_the_files_parses(tmp_path: Path, start_exporter: StartExporter) -> None:
    """Prometheus asks for OpenMetrics first: the files' families must come out valid there too, a
    counter without `_total` included."""
    directory = write_directory(tmp_path / "textfile")
    (directory / "w_counters.prom").write_text("# TYPE legacy_count counter\nlegacy_count 3\n")
    exporter = start_exporter(config(directory))
    response = exporter.get(
        "/metrics", params={"collect[]": "host.textfile"}, headers={"Accept": "application/openmetrics-text"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(response.text)}  # type: ignore[no-untyped-call]
    assert families["legacy_count"].type == "unknown"
    assert families["latency_seconds"].type == "histogram"
    assert families["shop_exports"].type == "counter"
