"""The `kpis:` config section: what it accepts, the defaults it fills in, and the errors it reports
(file, line, field path and the problem)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exporter.config.loader import ConfigError
from exporter.kpis.config import KpisConfig
from exporter.kpis.sources.http import HttpSourceConfig
from exporter.kpis.sources.sql_config import SqlSourceConfig
from exporter.registry import PulseConfig, load_config


def load(tmp_path: Path, text: str) -> PulseConfig:
    path = tmp_path / "pulse.yml"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def errors(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return str(caught.value)


SOURCES = """\
kpis:
  sources:
    shop: {dsn: "sqlite:///shop.db"}
    pay: {url: "http://127.0.0.1:9/stats", bearer_token: abc}
  queries:
"""


def test_a_full_section_loads_with_defaults_filled_in(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        SOURCES
        + """\
    - name: orders_by_status
      source: shop
      interval: 30s
      sql: SELECT status, COUNT(*) AS n FROM orders GROUP BY status
      metrics:
        - {name: shop_orders, value: n, labels: [status], help: Orders by status.}
    - name: payments
      source: pay
      schedule: "*/5 * * * *"
      request: {path: /v1/summary, params: {window: 1h}}
      rows: "items[?kind=='card']"
      metrics:
        - {name: pay_attempts_total, type: counter, value: attempts, labels: {method: method}}
""",
    )
    kpis = config.kpis
    orders, payments = kpis.resolved_queries()
    assert orders.interval == 30
    assert orders.timeout == 10  # kpis.timeout's default
    assert orders.metrics[0].series_limit == 500
    assert orders.metrics[0].expire_after == 90  # three intervals
    assert payments.interval is None
    assert payments.period == 300
    assert payments.metrics[0].name == "pay_attempts"  # exposed as pay_attempts_total
    assert payments.describe_schedule() == "on schedule '*/5 * * * *'"


def test_section_defaults_apply_to_every_query(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
kpis:
  interval: 2m
  timeout: 20s
  series_limit: 50
  expire_after: 1h
  sources: {shop: {dsn: "sqlite:///shop.db"}}
  queries:
    - {name: q, source: shop, sql: SELECT 1 AS n, metrics: [{name: shop_n, value: n}]}
    - name: short
      source: shop
      interval: 5s
      sql: SELECT 1 AS n
      metrics: [{name: shop_m, value: n, series_limit: 7, expire_after: 0s}]
""",
    )
    q, short = config.kpis.resolved_queries()
    assert (q.interval, q.timeout, q.metrics[0].series_limit, q.metrics[0].expire_after) == (120, 20, 50, 3600)
    assert short.timeout == 5  # never longer than its interval unless set
    assert (short.metrics[0].series_limit, short.metrics[0].expire_after) == (7, 0)


def test_dsn_from_a_file_and_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dsn").write_text("postgresql+psycopg://reader:pw@db/shop\n")
    monkeypatch.setenv("PAY_TOKEN", "t0ken")
    config = load(
        tmp_path,
        """\
kpis:
  sources:
    shop: {dsn_file: dsn}
    pay: {url: "https://api.example.com", headers: {X-Api-Key: "${PAY_TOKEN}"}}
""",
    )
    shop = config.kpis.sources["shop"]
    pay = config.kpis.sources["pay"]
    assert isinstance(shop, SqlSourceConfig)
    assert isinstance(pay, HttpSourceConfig)
    assert shop.dsn == "postgresql+psycopg://reader:pw@db/shop"
    assert shop.safe_dsn == "postgresql+psycopg://reader:***@db/shop"
    assert pay.headers == {"X-Api-Key": "t0ken"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "    - {name: q, source: nope, sql: SELECT 1 AS n, metrics: [{name: x_n, value: n}]}",
            "pulse.yml:6: kpis.queries[0].source: no source named 'nope' under kpis.sources (known: pay, shop)",
        ),
        (
            "    - {name: q, source: shop, interval: 1m, schedule: '* * * * *', sql: SELECT 1, "
            "metrics: [{name: x, value: n}]}",
            "pulse.yml:6: kpis.queries[0].schedule: set either interval or schedule, not both",
        ),
        (
            "    - {name: q, source: shop, schedule: 'every monday', sql: SELECT 1, metrics: [{name: x, value: n}]}",
            "pulse.yml:6: kpis.queries[0].schedule: 'every monday' is not a cron expression",
        ),
        (
            "    - {name: q, source: shop, sql: SELECT 1 AS n, metrics: [{name: 2fast, value: n}]}",
            "pulse.yml:6: kpis.queries[0].metrics[0].name: metric name '2fast' is not valid",
        ),
        (
            "    - {name: q, source: shop, sql: SELECT 1 AS n, metrics: [{name: x_n_total, value: n}]}",
            "kpis.queries[0].metrics[0].name: _total is for counters",
        ),
        (
            "    - {name: q, source: shop, sql: SELECT 1 AS n, metrics: [{name: pulse_kpi_x, value: n}]}",
            "names starting with pulse_kpi_ are Pulse's own metrics",
        ),
        (
            "    - {name: q, source: shop, sql: SELECT 1 AS n, metrics: [{name: x, value: n, type: summary}]}",
            "kpis.queries[0].metrics[0].type: Input should be 'gauge' or 'counter'",
        ),
        (
            "    - {name: q, source: shop, sql: SELECT 1 AS n, metrics: [{name: x, value: n, labels: [__x]}]}",
            "label name '__x': names starting with __ are reserved",
        ),
        (
            "    - {name: q, source: shop, sql: SELECT 1 AS n, metrics: [{name: x, value: n, labels: [a], "
            "static_labels: {a: b}}]}",
            "kpis.queries[0].metrics[0].static_labels: a is also a label from the query",
        ),
        (
            "    - {name: q, source: shop, sql: SELECT 1 AS n, cursor: {column: id}, "
            "metrics: [{name: x, type: counter, value: n}]}",
            "kpis.queries[0].sql: a query with a cursor must use :cursor",
        ),
        (
            "    - {name: q, source: shop, sql: 'SELECT 1 AS n WHERE 1 > :cursor', cursor: {column: id}, "
            "metrics: [{name: x, value: n}]}",
            "kpis.queries[0].cursor: a cursor query adds up new rows, so its metrics are counters",
        ),
        (
            "    - {name: q, source: pay, sql: SELECT 1, metrics: [{name: x, value: n}]}",
            "kpis.queries[0].sql: this query's source is an HTTP API; use request (and rows) instead of sql",
        ),
        (
            "    - {name: q, source: shop, request: {path: /x}, metrics: [{name: x, value: n}]}",
            "pulse.yml:6: kpis.queries[0]: sql: a query on a SQL source needs sql",
        ),
        (
            "    - {name: q, source: pay, metrics: [{name: x, value: 'a[?'}]}",
            "kpis.queries[0]: metric x: value 'a[?' is not a valid JMESPath expression",
        ),
        (
            "    - {name: q, source: shop, interval: 10s, timeout: 1m, sql: SELECT 1, metrics: [{name: x, value: n}]}",
            "kpis.queries[0].timeout: longer than the interval",
        ),
        (
            "    - {name: q, source: shop, sql: SELECT 1, metrics: []}",
            "kpis.queries[0].metrics: List should have at least 1 item",
        ),
        (
            "    - {name: q, source: shop, sql: SELECT 1, metrics: [{name: x, value: n, colour: red}]}",
            "kpis.queries[0].metrics[0].colour: unknown field",
        ),
    ],
)
def test_query_errors_name_the_file_line_and_field(tmp_path: Path, query: str, expected: str) -> None:
    assert expected in errors(tmp_path, SOURCES + query + "\n")


def test_duplicate_query_names_are_refused(tmp_path: Path) -> None:
    message = errors(
        tmp_path,
        SOURCES
        + """\
    - {name: q, source: shop, sql: SELECT 1 AS n, metrics: [{name: x_a, value: n}]}
    - {name: q, source: shop, sql: SELECT 1 AS n, metrics: [{name: x_b, value: n}]}
""",
    )
    assert "two queries are named 'q'" in message


def test_one_metric_from_two_queries_needs_distinct_static_labels(tmp_path: Path) -> None:
    message = errors(
        tmp_path,
        SOURCES
        + """\
    - {name: a, source: shop, sql: SELECT 1 AS n, metrics: [{name: x_n, value: n}]}
    - {name: b, source: shop, sql: SELECT 1 AS n, metrics: [{name: x_n, value: n}]}
""",
    )
    assert "metric x_n comes from queries a and b" in message
    message = errors(
        tmp_path,
        SOURCES
        + """\
    - {name: a, source: shop, sql: SELECT 1 AS n, metrics: [{name: x_n, value: n, static_labels: {s: a}}]}
    - {name: b, source: shop, sql: SELECT 1 AS n,
       metrics: [{name: x_n, type: counter, value: n, static_labels: {s: b}}]}
""",
    )
    assert "different types or label names" in message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{dsn: 'not a url'}", "kpis.sources.shop.dsn: not a SQLAlchemy URL"),
        ("{dsn: 'foo://x'}", "kpis.sources.shop.dsn: SQLAlchemy has no database dialect 'foo'"),
        ("{dsn: 'sqlite:///x.db', dsn_file: /x}", "set either dsn or dsn_file, not both"),
        ("{dsn_file: /nonexistent/dsn}", "dsn_file: cannot read /nonexistent/dsn"),
        ("{dns: 'sqlite:///x.db'}", "kpis.sources.shop: a source needs dsn (or dsn_file) for a SQL database, or url"),
        ("{url: 'ftp://x'}", "kpis.sources.shop.url: must be an http:// or https:// URL"),
        (
            "{url: 'http://x', bearer_token: a, headers: {Authorization: b}}",
            "set either bearer_token or an Authorization",
        ),
        ("{url: 'http://x', timeout: soon}", "kpis.sources.shop.timeout: not a duration: 'soon'"),
        (
            "{url: 'http://x', bearer_tokn: a}",
            "kpis.sources.shop.bearer_tokn: unknown field (did you mean 'bearer_token'?)",
        ),
        (
            "{dsn: 'sqlite:///x.db', pool_sise: 3}",
            "kpis.sources.shop.pool_sise: unknown field (did you mean 'pool_size'?)",
        ),
    ],
)
def test_source_errors(tmp_path: Path, source: str, expected: str) -> None:
    message = errors(tmp_path, f"kpis:\n  sources:\n    shop: {source}\n")
    assert expected in message
    assert "pulse.yml:3:" in message


def test_a_password_in_a_bad_dsn_is_not_echoed(tmp_path: Path) -> None:
    message = errors(tmp_path, "kpis:\n  sources:\n    shop: {dsn: 'nosuchdb+x://u:hunter2@h/d'}\n")
    assert "hunter2" not in message


def test_packs_expand_into_queries_for_their_source(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
kpis:
  sources:
    eu: {dsn: "sqlite:///eu.db"}
    us: {dsn: "postgresql+psycopg://reader@db/us"}
  packs:
    - {pack: marketplace, source: eu, static_labels: {shop: eu}}
    - {pack: marketplace, source: us, name_prefix: us_, static_labels: {shop: us}, interval: 2m}
""",
    )
    queries = config.kpis.resolved_queries()
    eu = [q for q in queries if q.source == "eu"]
    us = [q for q in queries if q.source == "us"]
    assert eu
    assert len(eu) == len(us)
    assert all(q.name.startswith("us_") for q in us)
    assert all(q.interval == 120 for q in us)
    assert all(m.config.static_labels.get("shop") == "us" for q in us for m in q.metrics)


def test_a_pack_top_n_sets_how_many_products_get_a_label(tmp_path: Path) -> None:
    base = "kpis:\n  sources: {shop: {dsn: 'sqlite:///x.db'}}\n  packs:\n    - {pack: marketplace, source: shop"
    queries = {q.name: q for q in load(tmp_path, base + ", top_n: 3}\n").kpis.resolved_queries()}
    assert "place <= 3 " in str(queries["marketplace_top_products"].config.sql)
    assert "top 3 products" in str(queries["marketplace_top_products"].metrics[0].config.help)
    default = {q.name: q for q in load(tmp_path, base + "}\n").kpis.resolved_queries()}
    assert "place <= 10 " in str(default["marketplace_top_categories"].config.sql)
    too_many = errors(tmp_path, base + ", top_n: 51}\n")
    assert "pulse.yml:4: kpis.packs[0].top_n: Input should be less than or equal to 50" in too_many


def test_pack_errors(tmp_path: Path) -> None:
    unknown = errors(
        tmp_path, "kpis:\n  sources: {shop: {dsn: 'sqlite:///x.db'}}\n  packs:\n    - {pack: nope, source: shop}\n"
    )
    assert "pulse.yml:4: kpis.packs[0].pack: unknown pack 'nope'" in unknown
    http = errors(
        tmp_path, "kpis:\n  sources: {pay: {url: 'http://x'}}\n  packs:\n    - {pack: marketplace, source: pay}\n"
    )
    assert "kpis.packs[0].source: 'pay' is not a SQL source" in http
    twice = errors(
        tmp_path,
        "kpis:\n  sources: {a: {dsn: 'sqlite:///a.db'}, b: {dsn: 'sqlite:///b.db'}}\n  packs:\n"
        "    - {pack: marketplace, source: a, static_labels: {shop: a}}\n"
        "    - {pack: marketplace, source: b, static_labels: {shop: b}}\n",
    )
    assert "a pack used twice needs a name_prefix" in twice


def test_an_unchanged_section_compares_equal_so_a_reload_keeps_the_collector(tmp_path: Path) -> None:
    text = SOURCES + "    - {name: q, source: shop, sql: SELECT 1 AS n, metrics: [{name: x_n, value: n}]}\n"
    assert load(tmp_path, text).kpis == load(tmp_path, text).kpis
    assert KpisConfig() == load(tmp_path, "{}\n").kpis


def test_a_timeout_longer_than_the_default_interval_is_refused(tmp_path: Path) -> None:
    message = errors(
        tmp_path,
        """\
kpis:
  interval: 30s
  sources: {shop: {dsn: "sqlite:///shop.db"}}
  queries:
    - {name: q, source: shop, timeout: 1m, sql: SELECT 1 AS n, metrics: [{name: x_n, value: n}]}
""",
    )
    assert "pulse.yml:4: kpis.queries: query q's timeout (60s) is longer than its interval (30s" in message


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("  interval: 0s\n", "pulse.yml:2: kpis.interval: must be longer than 0s"),
        ("  interval: -5\n", "pulse.yml:2: kpis.interval: a duration cannot be negative"),
        ("  timeout: 0s\n", "pulse.yml:2: kpis.timeout: must be longer than 0s"),
        ("  series_limit: 0\n", "pulse.yml:2: kpis.series_limit: Input should be greater than or equal to 1"),
        ("  interval: .nan\n", "pulse.yml:2: kpis.interval: not a duration: nan"),
        (
            "  sources: {shop: {dsn: 'sqlite:///x.db', connect_timeout: 0s}}\n",
            "pulse.yml:2: kpis.sources.shop.connect_timeout: must be longer than 0s",
        ),
        (
            "  sources: {shop: {dsn: 'sqlite:///x.db', pool_recycle: 0s}}\n",
            "pulse.yml:2: kpis.sources.shop.pool_recycle: must be longer than 0s",
        ),
        (
            "  sources: {shop: {dsn: 'sqlite:///x.db', pool_size: 0}}\n",
            "pulse.yml:2: kpis.sources.shop.pool_size: Input should be greater than or equal to 1",
        ),
        (
            "  sources: {pay: {url: 'http://127.0.0.1:9/', timeout: 0s}}\n",
            "pulse.yml:2: kpis.sources.pay.timeout: must be longer than 0s",
        ),
        (
            "  sources: {shop: {dsn: 'sqlite:///x.db'}}\n"
            "  queries: [{name: q, source: shop, interval: 0s, sql: SELECT 1 AS n, metrics: [{name: x, value: n}]}]\n",
            "pulse.yml:3: kpis.queries[0].interval: must be longer than 0s",
        ),
        (
            "  sources: {shop: {dsn: 'sqlite:///x.db'}}\n"
            "  queries: [{name: q, source: shop, sql: SELECT 1 AS n,\n"
            "             metrics: [{name: x, value: n, series_limit: 0}]}]\n",
            "pulse.yml:4: kpis.queries[0].metrics[0].series_limit: Input should be greater than or equal to 1",
        ),
        (
            "  sources: {shop: {dsn: 'sqlite:///x.db'}}\n  packs: [{pack: nope, source: shop, interval: 0s}]\n",
            "pulse.yml:3: kpis.packs[0].interval: must be longer than 0s",
        ),
    ],
)
def test_zero_or_negative_intervals_timeouts_and_limits_are_refused(
    tmp_path: Path, section: str, expected: str
) -> None:
    assert expected in errors(tmp_path, "kpis:\n" + section)


def test_an_unknown_source_is_reported_in_the_same_pass_as_the_other_problems(tmp_path: Path) -> None:
    message = errors(
        tmp_path,
        SOURCES
        + "    - {name: q, source: shpo, sql: SELECT 1 AS n, metrics: [{name: 2fast, value: n}]}\n"
        + "  packs:\n    - {pack: nope, source: pya}\n",
    )
    assert [line.removeprefix(f"{tmp_path}/") for line in message.splitlines()] == [
        "pulse.yml:6: kpis.queries[0].source: no source named 'shpo' under kpis.sources (did you mean 'shop'?)",
        "pulse.yml:6: kpis.queries[0].metrics[0].name: metric name '2fast' is not valid: "
        "use letters, digits and _, not starting with a digit",
        "pulse.yml:8: kpis.packs[0].pack: unknown pack 'nope'; Pulse supports: marketplace",
        "pulse.yml:8: kpis.packs[0].source: no source named 'pya' under kpis.sources (did you mean 'pay'?)",
    ]
