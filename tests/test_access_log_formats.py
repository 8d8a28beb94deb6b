"""What a line becomes: each format, the bounded labels (route, method, code), the series limit, and the
config's refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exporter.access_logs.collector import AccessLog
from exporter.config.loader import ConfigError
from exporter.registry import load_config
from tests.access_logs import counts, log_collector, nginx_line, one_log, write_lines

ROOT = Path(__file__).resolve().parent.parent
ROUTES = [{"name": "product", "path": "/products/[0-9]+"}, {"name": "home", "path": "/"}]


def read_all(tmp_path: Path, text: str, **options: Any) -> AccessLog:
    path = tmp_path / "access.log"
    write_lines(path, text)
    log = one_log(path, from_start=True, **options)
    while log.poll():
        pass
    return log


def requests(log: AccessLog) -> dict[tuple[str, str, str], float]:
    return {
        (dict(labels)["route"], dict(labels)["method"], dict(labels)["code"]): value
        for labels, value in counts(log)["http_requests_total"].items()
    }


def test_nginx_combined_with_request_and_upstream_times(tmp_path: Path) -> None:
    log = read_all(
        tmp_path,
        nginx_line("GET", "/products/12?ref=mail", 200, 1000, request_time="0.120", upstream_time="0.100")
        + nginx_line("POST", "/products/7", 500, 20, request_time="2.000", upstream_time="-")
        + nginx_line("GET", "/", 304, 0, request_time=None),
        routes=ROUTES,
    )
    found = counts(log)
    service = ("service", "web")
    product_get = (("code", "200"), ("method", "GET"), ("route", "product"), service)
    assert found["http_requests_total"][product_get] == 1
    assert found["http_response_size_bytes_sum"][product_get] == 1000
    assert found["http_request_duration_seconds_bucket"][tuple(sorted((*product_get, ("le", "0.1"))))] == 0
    assert found["http_request_duration_seconds_bucket"][tuple(sorted((*product_get, ("le", "0.25"))))] == 1
    assert found["http_upstream_duration_seconds_sum"][product_get] == pytest.approx(0.1)
    product_post = (("code", "500"), ("method", "POST"), ("route", "product"), service)
    assert found["http_request_duration_seconds_sum"][product_post] == 2.0
    assert product_post not in found["http_upstream_duration_seconds_count"]  # "-": no upstream
    home = (("code", "304"), ("method", "GET"), ("route", "home"), service)
    assert found["http_requests_total"][home] == 1
    assert home not in found["http_request_duration_seconds_count"]  # plain combined: no duration
    assert log.stats.lines_parsed == 3


def test_apache_combined_with_escaped_quotes_dash_bytes_and_a_trailing_integer(tmp_path: Path) -> None:
    log = read_all(
        tmp_path,
        '192.0.2.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
        '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"\n'
        '192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "HEAD / HTTP/1.0" 304 - "-" "say \\"hi\\"" 1534\n',
    )
    found = counts(log)
    assert log.stats.lines_parsed == 2
    assert sum(found["http_response_size_bytes_sum"].values()) == 2326
    assert "http_request_duration_seconds_count" not in found  # %D's integer is not read as seconds


def test_methods_outside_the_standard_set_paths_outside_the_routes_and_bad_requests(tmp_path: Path) -> None:
    log = read_all(
        tmp_path,
        nginx_line("PROPFIND", "/products/1")
        + nginx_line("get", "/cart")
        + '203.0.113.9 - - [07/Dec/2026:02:50:00 +0000] "\\x16\\x03\\x01\\x00" 400 157 "-" "-" 0.001\n',
        routes=ROUTES,
    )
    assert requests(log) == {("product", "OTHER", "200"): 1, ("other", "GET", "200"): 1, ("other", "OTHER", "400"): 1}


def test_json_lines_with_a_field_mapping(tmp_path: Path) -> None:
    log = read_all(
        tmp_path,
        '{"req": {"method": "GET", "uri": "/products/3?x=1"}, "status": 200, "size": 12, "ms": 250}\n'
        '{"req": {"method": "DELETE", "uri": "/"}, "status": "503", "size": "7", "ms": "1500"}\n'
        '{"req": {"method": "GET"}}\n'
        "not json\n" + "[" * 60000 + "\n",
        format="json",
        routes=ROUTES,
        json={
            "method": "req.method",
            "path": "req.uri",
            "code": "status",
            "bytes": "size",
            "duration": "ms",
            "duration_unit": "ms",
        },
    )
    assert requests(log) == {("product", "GET", "200"): 1, ("home", "DELETE", "503"): 1}
    assert (log.stats.lines_parsed, log.stats.lines_unparsed) == (2, 3)
    found = counts(log)
    assert sorted(found["http_request_duration_seconds_sum"].values()) == [0.25, 1.5]


def test_a_regex_with_named_groups_for_an_application_log(tmp_path: Path) -> None:
    log = read_all(
        tmp_path,
        "2026-12-07T02:50:00Z INFO erp.api POST /api/orders/55 -> 201 in 35ms\n"
        "2026-12-07T02:50:01Z INFO erp.api GET /api/orders/56 -> 404 in 3ms\n"
        "2026-12-07T02:50:02Z DEBUG cache warmed\n",
        format="regex",
        regex=r"(?P<method>[A-Z]+) (?P<path>\S+) -> (?P<code>\d{3}) in (?P<duration>\d+)ms",
        duration_unit="ms",
        routes=[{"name": "order", "path": "/api/orders/[0-9]+"}],
    )
    assert requests(log) == {("order", "POST", "201"): 1, ("order", "GET", "404"): 1}
    assert log.stats.lines_unparsed == 1
    assert sum(counts(log)["http_request_duration_seconds_sum"].values()) == pytest.approx(0.038)


def test_a_code_that_is_not_an_http_status_makes_the_line_unparsed(tmp_path: Path) -> None:
    log = read_all(tmp_path, "x 999\nx 200\n", format="regex", regex=r"(?P<code>\d+)$")
    assert (log.stats.lines_parsed, log.stats.lines_unparsed) == (1, 1)


def test_new_label_sets_over_the_series_limit_are_dropped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = "".join(nginx_line(code=code) for code in (200, 201, 202, 203, 200, 204))
    log = read_all(tmp_path, text, series_limit=3)
    assert requests(log) == {("other", "GET", "200"): 2, ("other", "GET", "201"): 1, ("other", "GET", "202"): 1}
    assert log.stats.lines_over_limit == 2
    assert caplog.text.count("reached its series limit") == 1


def test_logs_of_one_service_add_up(tmp_path: Path) -> None:
    for name in ("a.log", "b.log"):
        write_lines(tmp_path / name, nginx_line() * 2)
    collector = log_collector(
        {name: {"paths": [str(tmp_path / f"{name}.log")], "service": "shop", "from_start": True} for name in "ab"}
    )
    for log in collector.logs:
        log.poll()
    found = counts(collector)
    assert found["http_requests_total"] == {
        (("code", "200"), ("method", "GET"), ("route", "other"), ("service", "shop")): 4
    }
    assert sorted(found["pulse_access_log_lines_read_total"].values()) == [2, 2]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("files: {web: {paths: [/x], format: apache}}", "format"),
        ("files: {web: {paths: [/x], format: regex}}", "needs `regex:`"),
        ("files: {web: {paths: [/x], format: regex, regex: '(?P<status>\\d+)'}}", "named group `code`"),
        ("files: {web: {paths: [/x], format: regex, regex: '(?P<code>\\d+)(?P<user>x)'}}", "unknown named groups"),
        ("files: {web: {paths: [/x], format: regex, regex: '(?P<code>(a+)+\\1)'}}", "RE2"),
        ("files: {web: {paths: [/x], routes: [{name: other, path: /}]}}", "reserved"),
        ("files: {web: {paths: [/x], routes: [{name: a, path: /}, {name: a, path: /b}]}}", "two routes"),
        ("files: {web: {paths: [/x], buckets: [1, 0.5]}}", "strictly increasing"),
        ("files: {web: {paths: []}}", "at least 1"),
        ("files: {web: {paths: [/x], json: {code: status}}}", "for format json"),
        (
            "files: {a: {paths: [/x], service: s}, b: {paths: [/y], service: s, buckets: [1]}}",
            "different buckets",
        ),
        ("files: {'bad name': {paths: [/x]}}", "log name"),
    ],
)
def test_config_mistakes_are_refused_with_the_reason(tmp_path: Path, section: str, message: str) -> None:
    path = tmp_path / "pulse.yml"
    path.write_text("logs:\n  " + section + "\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert message in str(raised.value)
    assert "Traceback" not in str(raised.value)


def test_the_example_config_loads_and_its_regex_reads_its_sample_line(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "access-logs.yml"
    config = load_config(example)
    erp_app = config.logs.files["erp_app"]
    assert config.logs.service_of("erp_app") == config.logs.service_of("erp_apache") == "erp"
    log = read_all(
        tmp_path,
        "2026-12-07 02:50:00,123 INFO [http] POST /erp/orders/55 -> 201 (1834 bytes) in 35 ms\n",
        format="regex",
        regex=erp_app.regex.pattern if erp_app.regex else "",
        duration_unit=erp_app.duration_unit,
        routes=[route.model_dump(mode="json") for route in erp_app.routes],
    )
    assert requests(log) == {("orders", "POST", "201"): 1}
    assert sum(counts(log)["http_response_size_bytes_sum"].values()) == 1834


def test_hostile_long_lines_cannot_stall_the_combined_parser(tmp_path: Path) -> None:
    # Overlapping character classes made a 64 KiB request without its closing quote cost minutes of
    # backtracking (9 s at 20 KiB). Not a speed test: the generous bound only stops a hang.
    hostile = [
        '1.1.1.1 - - [x] "GET /' + "a" * 65000,
        '1.1.1.1 - - [x] "GET /' + "a" * 65000 + '" x',
        '1.1.1.1 - - [x] "GET /?' + "a" * 65000 + '" x',
        '1.1.1.1 - - [x] "GET /a' + " a" * 32000,
        'a b "' + "c " * 32000,
        '1.1.1.1 - - [x] "GET / HTTP/1.1" 200 5 "' + '\\"' * 32000,
    ]
    path = tmp_path / "access.log"
    path.write_text("\n".join(hostile * 3) + "\n")
    script = (
        "import sys; from tests.access_logs import one_log; log = one_log(sys.argv[1], from_start=True);\n"
        "while log.poll(): pass\n"
        "print(log.stats.lines_read, log.stats.lines_unparsed)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60, check=True, cwd=ROOT
    )
    assert done.stdout.split() == ["18", "18"]
