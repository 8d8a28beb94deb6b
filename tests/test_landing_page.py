"""The landing page through a real pulse-exporter process: it tells the truth about KPI sources and
queries (a KPI collector serving cached results says `ok` even while every query fails), and it
escapes what it quotes (error messages carry what databases and remote servers said)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy

from tests.helpers import RunningExporter, StartExporter, landing_table

pytestmark = pytest.mark.integration


def make_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE orders (id INTEGER PRIMARY KEY)"))
        conn.execute(sqlalchemy.text("INSERT INTO orders VALUES (1), (2)"))
    engine.dispose()
    return url


def config(good: str, missing: Path) -> str:
    return f"""
collectors: {{host: {{enabled: false}}}}
kpis:
  sources:
    shop: {{dsn: "{good}"}}
    archive: {{dsn: "sqlite:///{missing}"}}
  queries:
    - name: orders
      source: shop
      interval: 200ms
      sql: SELECT COUNT(*) AS n FROM orders
      metrics: [{{name: shop_orders, value: n}}]
    - name: hostile
      source: shop
      interval: 200ms
      sql: SELECT n FROM "<script>alert(1)</script>"
      metrics: [{{name: shop_hostile, value: n}}]
    - name: archived_orders
      source: archive
      interval: 200ms
      sql: SELECT COUNT(*) AS n FROM orders
      metrics: [{{name: archive_orders, value: n}}]
"""


def section_rows(page: str, title: str) -> dict[str, list[str]]:
    """A table of the page as {first cell: [the other cells' text]}."""
    return {cells[0]: cells[1:] for cells in landing_table(page, title)}


def wait_for_runs(exporter: RunningExporter) -> None:
    wanted = [f'pulse_kpi_queries_total{{query="{q}",status="error"}}' for q in ("hostile", "archived_orders")]
    wanted.append('pulse_kpi_queries_total{query="orders",status="success"}')

    exporter.wait_for_samples(lambda s: all(s.get(name, 0) >= 1 for name in wanted), "every query ran once")


def test_the_landing_page_shows_each_kpi_source_up_or_down_and_each_query_with_its_last_error(
    start_exporter: StartExporter, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir" / "archive.db"
    exporter = start_exporter(config(make_database(tmp_path / "shop.db"), missing))
    wait_for_runs(exporter)
    page = exporter.get("/").text

    sources = section_rows(page, "KPI sources")
    assert sources["shop"][:3] == ["sql", f"sqlite:///{tmp_path / 'shop.db'}", "up"]
    assert sources["shop"][3] == ""
    kind, where, state, error = sources["archive"]
    assert (kind, where, state) == ("sql", f"sqlite:///{missing}", "DOWN")
    assert "unable to open database file" in error

    queries = section_rows(page, "KPI queries")
    source, state, last_success, error, runs = queries["orders"]
    assert (source, state, error) == ("shop", "ok", "")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)", last_success)
    assert re.fullmatch(r"\d+ success, 0 error, 0 timeout", runs)
    source, state, last_success, error, _ = queries["archived_orders"]
    assert (source, state, last_success) == ("archive", "FAILING", "never")
    assert "source archive unreachable: unable to open database file" in error

    # The collector's scrape works (it serves the cached results), and the page says what that hides.
    collectors = section_rows(page, "Collectors")
    assert re.fullmatch(r"ok in [\d.]+ ms \(2 of 3 queries failing\)", collectors["kpis"][0])


def test_error_messages_on_the_landing_page_are_escaped(start_exporter: StartExporter, tmp_path: Path) -> None:
    exporter = start_exporter(config(make_database(tmp_path / "shop.db"), tmp_path / "none" / "x.db"))
    wait_for_runs(exporter)
    page = exporter.get("/").text
    assert "<script>" not in page
    assert "no such table: &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert section_rows(page, "KPI queries")["hostile"][3] == "query hostile: no such table: <script>alert(1)</script>"


def test_the_landing_page_says_when_a_source_and_its_queries_have_not_run_yet(
    start_exporter: StartExporter, tmp_path: Path
) -> None:
    exporter = start_exporter(
        "collectors: {host: {enabled: false}}\n"
        "kpis:\n"
        f"  sources: {{shop: {{dsn: '{make_database(tmp_path / 'shop.db')}'}}}}\n"
        "  queries:\n"
        "    - {name: nightly, source: shop, schedule: '0 3 * * *', run_on_start: false,\n"
        "       sql: 'SELECT 1 AS n', metrics: [{name: nightly_n, value: n}]}\n"
    )
    page = exporter.get("/").text
    assert section_rows(page, "KPI sources")["shop"][2] == "not queried yet"
    assert section_rows(page, "KPI queries")["nightly"][:3] == ["shop", "not run yet", "never"]
