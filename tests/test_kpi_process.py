"""KPIs through a real `pulse-exporter` process: /metrics, scrapers vs executions, restarts, reloads."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from tests.helpers import StartExporter, parse_samples, require_binary

pytestmark = pytest.mark.integration


def make_shop(path: Path, orders: int) -> str:
    url = f"sqlite:///{path}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, status TEXT, amount REAL)")
        )
    add_orders(url, 1, orders)
    engine.dispose()
    return url


def add_orders(url: str, first: int, count: int) -> None:
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        for i in range(first, first + count):
            conn.execute(
                sqlalchemy.text("INSERT INTO orders VALUES (:id, :status, :amount)"),
                {"id": i, "status": "paid" if i % 3 else "new", "amount": 10.0},
            )
    engine.dispose()


def config_text(dsn: str, interval: str = "200ms", extra_queries: str = "", extra_sources: str = "") -> str:
    return f"""\
kpis:
  sources:
    shop: {{dsn: "{dsn}"}}
{extra_sources}
  queries:
    - name: orders_by_status
      source: shop
      interval: {interval}
      sql: SELECT status, COUNT(*) AS n FROM orders GROUP BY status
      metrics:
        - {{name: shop_orders, value: n, labels: [status], help: Orders by status.}}
    - name: order_totals
      source: shop
      interval: {interval}
      sql: >-
        SELECT status, COUNT(*) AS n, SUM(amount) AS amount, MAX(id) AS last_id
        FROM orders WHERE id > :cursor GROUP BY status
      cursor: {{column: last_id, initial: 0}}
      metrics:
        - {{name: shop_orders_created, type: counter, value: n, labels: [status], help: Orders created.}}
        - {{name: shop_gmv, type: counter, value: amount, labels: [status], help: Gross merchandise value in EUR.}}
{extra_queries}
"""


BAD_QUERY = """\
    - name: broken
      source: shop
      interval: 200ms
      sql: SELECT nope FROM no_such_table
      metrics:
        - {name: shop_broken, value: nope}
"""


def test_kpis_on_metrics_and_a_bad_query_hides_nothing(start_exporter: StartExporter, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    exporter = start_exporter(config_text(make_shop(tmp_path / "shop.db", 9), extra_queries=BAD_QUERY))
    samples = exporter.wait_for_samples(
        lambda s: (
            s.get('pulse_kpi_queries_total{query="broken",status="error"}', 0) >= 2
            and 'shop_orders_created_total{status="paid"}' in s
        ),
        "the KPIs and two failed runs of the broken query",
    )
    assert samples['shop_orders{status="paid"}'] == 6
    assert samples['shop_orders{status="new"}'] == 3
    assert samples['shop_orders_created_total{status="paid"}'] == 6
    assert samples['shop_gmv_total{status="new"}'] == 30
    assert samples['pulse_kpi_query_success{query="broken"}'] == 0
    assert samples['pulse_kpi_query_success{query="orders_by_status"}'] == 1
    assert samples['pulse_exporter_collector_success{collector="kpis"}'] == 1
    # Only the KPI collector: the host collectors keep node_exporter's names, which promtool lints.
    text = exporter.get("/metrics", params={"collect[]": "kpis"}, headers={"Accept": "text/plain"}).text
    assert "Cached: refreshed by query orders_by_status every 200ms, not at scrape time." in text
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no_such_table" in exporter.logs()
    assert exporter.logs().count("KPI query failed") == 1  # logged when it starts failing, not every run


class CountingApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits += 1  # type: ignore[attr-defined]
        body = json.dumps({"balance": 1234.5}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def counting_api() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), CountingApi)
    server.hits = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_concurrent_scrapers_cause_no_extra_executions(
    start_exporter: StartExporter, tmp_path: Path, counting_api: ThreadingHTTPServer
) -> None:
    api_source = f'    pay: {{url: "http://127.0.0.1:{counting_api.server_address[1]}"}}'
    api_query = """\
    - name: balance
      source: pay
      interval: 1h
      metrics:
        - {name: pay_balance, value: balance}
"""
    dsn = make_shop(tmp_path / "shop.db", 5)
    exporter = start_exporter(config_text(dsn, interval="1h", extra_queries=api_query, extra_sources=api_source))
    exporter.wait_for_samples(
        lambda s: "pay_balance" in s and 'shop_orders{status="paid"}' in s, "the first run of each query"
    )

    failures: list[BaseException] = []

    def scrape() -> None:
        try:
            for _ in range(50):
                assert "pay_balance 1234.5" in exporter.metrics_text()
        except BaseException as err:
            failures.append(err)

    scrapers = [threading.Thread(target=scrape) for _ in range(4)]
    for thread in scrapers:
        thread.start()
    for thread in scrapers:
        thread.join()
    assert not failures
    samples = parse_samples(exporter.metrics_text())
    for query in ("orders_by_status", "order_totals", "balance"):
        runs = sum(
            samples[f'pulse_kpi_queries_total{{query="{query}",status="{s}"}}'] for s in ("success", "error", "timeout")
        )
        assert runs == 1, f"{query} ran {runs} times for 200 scrapes"
    assert counting_api.hits == 1  # type: ignore[attr-defined]  # counted by the API itself


def test_counters_survive_an_exporter_restart_without_a_false_jump(
    start_exporter: StartExporter, tmp_path: Path
) -> None:
    dsn = make_shop(tmp_path / "shop.db", 9)
    first = start_exporter(config_text(dsn))
    before = first.wait_for_samples(lambda s: 'shop_orders_created_total{status="paid"}' in s, "the counters")
    add_orders(dsn, 10, 3)
    before = first.wait_for_samples(lambda s: s.get('shop_orders_created_total{status="paid"}') == 8, "the new orders")
    first.process.terminate()
    first.process.wait(10)

    add_orders(dsn, 13, 3)  # orders placed while the exporter was down
    second = start_exporter(config_text(dsn))
    after = second.wait_for_samples(
        lambda s: 'shop_orders_created_total{status="paid"}' in s, "the counters after the restart"
    )
    for series in (
        'shop_orders_created_total{status="paid"}',
        'shop_orders_created_total{status="new"}',
        'shop_gmv_total{status="paid"}',
    ):
        assert after[series] >= before[series], f"{series} went from {before[series]} to {after[series]}"
    assert after['shop_orders_created_total{status="paid"}'] == 10  # every order counted once, none twice
    assert after['shop_orders_created_total{status="new"}'] == 5


def test_a_reload_with_a_broken_kpis_section_keeps_the_running_one(
    start_exporter: StartExporter, tmp_path: Path
) -> None:
    dsn = make_shop(tmp_path / "shop.db", 3)
    exporter = start_exporter(config_text(dsn))
    exporter.wait_for_samples(lambda s: 'shop_orders{status="paid"}' in s, "the KPIs")
    broken = config_text(dsn).replace(
        "source: shop\n      interval: 200ms\n      sql: SELECT status, COUNT(*)",
        "source: nowhere\n      interval: 200ms\n      sql: SELECT status, COUNT(*)",
    )
    assert "source: nowhere" in broken
    (tmp_path / "pulse.yml").write_text(broken)
    response = exporter.post("/-/reload")
    assert response.status_code == 500
    assert "kpis.queries[0].source: no source named 'nowhere'" in response.text
    runs = parse_samples(exporter.metrics_text())['pulse_kpi_queries_total{query="orders_by_status",status="success"}']
    samples = exporter.wait_for_samples(
        lambda s: s['pulse_kpi_queries_total{query="orders_by_status",status="success"}'] > runs,
        "the old queries to keep running",
    )
    assert samples["pulse_exporter_config_last_reload_successful"] == 0
    assert samples['shop_orders{status="paid"}'] == 2


def test_a_reload_that_adds_a_query_keeps_the_others_running_undisturbed(
    start_exporter: StartExporter, tmp_path: Path
) -> None:
    dsn = make_shop(tmp_path / "shop.db", 6)
    exporter = start_exporter(config_text(dsn, interval="1h"))
    before = exporter.wait_for_samples(lambda s: 'shop_orders_created_total{status="paid"}' in s, "the first runs")
    added = """\
    - name: order_count
      source: shop
      interval: 1h
      sql: SELECT COUNT(*) AS n FROM orders
      metrics:
        - {name: shop_orders_all, value: n}
"""
    (tmp_path / "pulse.yml").write_text(config_text(dsn, interval="1h", extra_queries=added))
    assert exporter.post("/-/reload").status_code == 200
    right_after = parse_samples(exporter.metrics_text())
    # Still there at once, from the same run: not re-run (interval 1h), not recounted, no gap.
    for series in (
        'shop_orders{status="paid"}',
        'shop_orders_created_total{status="paid"}',
        'pulse_kpi_query_last_success_timestamp_seconds{query="order_totals"}',
        'pulse_kpi_queries_total{query="order_totals",status="success"}',
    ):
        assert right_after[series] == before[series], series
    after = exporter.wait_for_samples(lambda s: "shop_orders_all" in s, "the new query's first run")
    assert after["shop_orders_all"] == 6
    assert after['pulse_kpi_queries_total{query="orders_by_status",status="success"}'] == 1
