"""The KPI example configs load, and run for real.

- examples/demo.yml: the live demo's config, run by a pulse-exporter over a database the demo generator
  wrote (in the exporter's working directory, as scripts/demo does), probing the demo shop.
- examples/erp-crm.yml: the ERP/CRM template, run against a real PostgreSQL database holding the
  tables its header describes; every metric is compared with the value computed here from the rows.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy

from exporter.demo import generator
from exporter.demo.shop import make_server
from exporter.kpis.packs import PACKS
from exporter.kpis.sources.sql_config import SqlSourceConfig
from exporter.registry import load_config
from tests.helpers import RunningExporter, Samples, StartExporter, free_port, parse_samples

if TYPE_CHECKING:
    from tests.databases import TestDatabase

pytest_plugins = ("tests.databases",)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO = EXAMPLES / "demo.yml"
ERP = EXAMPLES / "erp-crm.yml"
FUNNEL = ("session_started", "product_viewed", "added_to_cart", "checkout_started", "paid")
ERP_QUERIES = [
    "erp_invoices_open",
    "erp_receivables_overdue",
    "erp_invoices_issued",
    "crm_leads",
    "crm_opportunities",
    "crm_tickets_open",
    "erp_freshness",
]


def wait_until_queries_succeed(exporter: RunningExporter, queries: list[str]) -> Samples:
    return exporter.wait_for_samples(
        lambda s: all(s.get(f'pulse_kpi_query_success{{query="{name}"}}') == 1 for name in queries),
        f"every query succeeding: {queries}",
        timeout=60,
    )


def test_the_demo_config_loads_with_the_marketplace_pack_every_10s() -> None:
    config = load_config(DEMO)
    source = config.kpis.sources["shop"]
    assert isinstance(source, SqlSourceConfig)
    assert source.dsn == "sqlite:///demo.db"
    queries = config.kpis.resolved_queries()
    assert {q.name for q in queries} == {q["name"] for q in PACKS["marketplace"]("shop", "sqlite")}
    assert {q.period for q in queries} == {10.0}
    assert config.collectors.host.enabled


def test_the_demo_config_serves_kpis_over_generated_data(tmp_path: Path, start_exporter: StartExporter) -> None:
    # The exporter runs in tmp_path, where examples/demo.yml's sqlite:///demo.db points.
    assert generator.main(["--url", f"sqlite:///{tmp_path / 'demo.db'}", "--backfill", "2d"]) == 0
    exporter = start_exporter(DEMO.read_text())
    queries = [q["name"] for q in PACKS["marketplace"]("shop", "sqlite")]
    samples = wait_until_queries_succeed(exporter, queries)
    assert samples["business_sessions_total"] > 1000
    assert 0 < samples["business_conversion_rate_ratio"] < 1
    # The behaviour flow narrows from visits to payments, and the best sellers have their own series.
    funnel = [samples[f'business_funnel_sessions{{step="{step}",window="24h"}}'] for step in FUNNEL]
    assert funnel == sorted(funnel, reverse=True)
    assert funnel[-1] > 0
    assert sum(key.startswith("business_product_orders{") for key in samples) == 11  # top 10 + other
    assert samples['business_table_newest_row_timestamp_seconds{table="events"}'] > 0
    assert any(key.startswith("node_cpu_seconds_total{") for key in samples)  # host metrics as well


def test_the_demo_config_probes_the_demo_shop_and_explains_the_target_that_is_down(
    tmp_path: Path, start_exporter: StartExporter
) -> None:
    shop = make_server("127.0.0.1", 0)
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    try:
        # scripts/demo runs the shop on 10136; here it gets a free port, and 10137 (nothing) another one.
        down = free_port()
        config = DEMO.read_text().replace("10136", str(shop.server_address[1])).replace("10137", str(down))
        exporter = start_exporter(config)
        targets = {(g["labels"]["module"], g["targets"][0]) for g in exporter.get("/sd/probes").json()}
        assert len(targets) == 6  # the shop's page, port, journey, HTTPS and DNS; the port that is down
        assert ("shop_checkout", f"http://127.0.0.1:{shop.server_address[1]}/") in targets  # the journey
        for module, target in targets:
            samples = parse_samples(exporter.get("/probe", params={"module": module, "target": target}).text)
            if str(down) in target:
                assert samples["probe_success"] == 0
                assert samples['probe_failure_info{reason="connection_refused"}'] == 1
            else:
                assert samples["probe_success"] == 1, (module, target, samples)
    finally:
        shop.shutdown()
        shop.server_close()


def test_the_erp_template_needs_its_dsn_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERP_DSN", raising=False)
    with pytest.raises(Exception, match="ERP_DSN") as error:
        load_config(ERP)
    assert "erp-crm.yml" in str(error.value)
    monkeypatch.setenv("ERP_DSN", "postgresql+psycopg://pulse_ro@erp-db.internal:5432/erp")
    config = load_config(ERP)
    assert [q.name for q in config.kpis.resolved_queries()] == ERP_QUERIES


ERP_SCHEMA = """
CREATE TABLE invoices (id bigserial PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,
  currency char(3) NOT NULL, amount numeric(12,2) NOT NULL, amount_paid numeric(12,2) NOT NULL DEFAULT 0,
  issued_at timestamptz NOT NULL, due_date date NOT NULL);
CREATE TABLE leads (id bigserial PRIMARY KEY, source text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE opportunities (id bigserial PRIMARY KEY, stage text NOT NULL, amount numeric(12,2),
  updated_at timestamptz NOT NULL);
CREATE TABLE tickets (id bigserial PRIMARY KEY, priority text NOT NULL, status text NOT NULL,
  created_at timestamptz NOT NULL);
"""


def erp_rows(now: datetime) -> dict[str, list[dict[str, Any]]]:
    today = now.date()
    invoices = []
    for i in range(1, 31):
        status = ("draft", "open", "open", "paid", "cancelled", "open")[i % 6]
        invoices.append(
            {
                "id": i,
                "customer_id": 100 + i % 7,
                "status": status,
                "currency": ("EUR", "USD")[i % 2],
                "amount": Decimal(100 * i) + Decimal("0.25"),
                "amount_paid": Decimal(10 * i) if status == "open" and i % 4 == 0 else Decimal(0),
                "issued_at": now - timedelta(days=40 - i),
                "due_date": today + timedelta(days=i - 20),  # the first 19 are overdue
            }
        )
    leads = [{"id": i, "source": ("web", "referral", "event")[i % 3], "created_at": now} for i in range(1, 12)]
    stages = ("qualified", "proposal", "negotiation", "won", "lost")
    opportunities = [
        {"id": i, "stage": stages[i % 5], "amount": Decimal(1000 * i), "updated_at": now} for i in range(1, 16)
    ]
    priorities, statuses = ("low", "normal", "high", "urgent"), ("open", "pending", "solved")
    tickets = [
        {"id": i, "priority": priorities[i % 4], "status": statuses[i % 3], "created_at": now - timedelta(hours=i)}
        for i in range(1, 21)
    ]
    return {"invoices": invoices, "leads": leads, "opportunities": opportunities, "tickets": tickets}


def expected_erp(rows: dict[str, list[dict[str, Any]]], now: datetime) -> dict[str, float]:
    """The template's KPIs, computed from the rows (keys as exposed: 'name{labels}')."""
    out: dict[str, float] = defaultdict(float)
    today = now.date()
    oldest_overdue: dict[str, date] = {}
    for inv in rows["invoices"]:
        cur = inv["currency"]
        outstanding = float(inv["amount"] - inv["amount_paid"])
        if inv["status"] == "open":
            out[f'erp_invoices_open{{currency="{cur}"}}'] += 1
            out[f'erp_receivables_outstanding{{currency="{cur}"}}'] += outstanding
            if inv["due_date"] < today:
                out[f'erp_invoices_overdue{{currency="{cur}"}}'] += 1
                out[f'erp_receivables_overdue{{currency="{cur}"}}'] += outstanding
                oldest_overdue[cur] = min(oldest_overdue.get(cur, inv["due_date"]), inv["due_date"])
        if inv["status"] != "draft":
            out[f'erp_invoices_issued_total{{currency="{cur}"}}'] += 1
            out[f'erp_invoiced_amount_total{{currency="{cur}"}}'] += float(inv["amount"])
    for lead in rows["leads"]:
        out[f'crm_leads_total{{source="{lead["source"]}"}}'] += 1
    for opp in rows["opportunities"]:
        if opp["stage"] not in ("won", "lost"):
            out[f'crm_opportunities_open{{stage="{opp["stage"]}"}}'] += 1
            out[f'crm_pipeline_value{{stage="{opp["stage"]}"}}'] += float(opp["amount"])
    for ticket in rows["tickets"]:
        if ticket["status"] in ("open", "pending"):
            out[f'crm_tickets_open{{priority="{ticket["priority"]}"}}'] += 1
    newest = {
        "invoices": max(i["issued_at"] for i in rows["invoices"]),
        "leads": max(lead["created_at"] for lead in rows["leads"]),
        "opportunities": max(o["updated_at"] for o in rows["opportunities"]),
        "tickets": max(t["created_at"] for t in rows["tickets"]),
    }
    for table, timestamp in newest.items():
        out[f'erp_table_newest_row_timestamp_seconds{{table="{table}"}}'] = timestamp.timestamp()
    # Ages grow while the test runs: checked separately, with the time it took as tolerance.
    for cur, due in oldest_overdue.items():
        out[f'erp_receivables_oldest_overdue_seconds{{currency="{cur}"}}'] = (
            now - datetime.combine(due, datetime.min.time(), UTC)
        ).total_seconds()
    for priority in ("low", "normal", "high", "urgent"):
        waiting = [t["created_at"] for t in rows["tickets"] if t["priority"] == priority and t["status"] != "solved"]
        if waiting:
            out[f'crm_tickets_oldest_open_age_seconds{{priority="{priority}"}}'] = (now - min(waiting)).total_seconds()
    return dict(out)


def test_the_erp_template_runs_against_a_real_postgresql(
    postgresql_database: TestDatabase, start_exporter: StartExporter
) -> None:
    engine = postgresql_database.engine()
    now = datetime.now(UTC).replace(microsecond=0)
    rows = erp_rows(now)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("SET TIME ZONE 'UTC'"))
        for statement in ERP_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(sqlalchemy.text(statement))
        meta = sqlalchemy.MetaData()
        meta.reflect(conn, only=list(rows))
        for table, table_rows in rows.items():
            conn.execute(meta.tables[table].insert(), table_rows)
    try:
        # The exporter's session time zone must be UTC for `due_date::timestamp` to mean UTC midnight.
        # The template's account must be unprivileged (Pulse refuses a superuser): the reader.
        dsn = postgresql_database.reader_url + "?options=-c%20TimeZone%3DUTC"
        exporter = start_exporter(ERP.read_text(), env={"ERP_DSN": dsn})
        samples = wait_until_queries_succeed(exporter, ERP_QUERIES)
        finished = datetime.now(UTC)
        expected = expected_erp(rows, now)
        exposed = {k: v for k, v in samples.items() if k.startswith(("erp_", "crm_"))}
        assert sorted(exposed) == sorted(expected)
        slack = (finished - now).total_seconds() + 1
        for key, value in expected.items():
            if "_timestamp_seconds{" in key:
                assert exposed[key] == pytest.approx(value, rel=0, abs=1e-3), key
            elif "_seconds{" in key:
                assert value <= exposed[key] <= value + slack, key
            else:
                assert exposed[key] == pytest.approx(value), key
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("DROP TABLE invoices, leads, opportunities, tickets"))
