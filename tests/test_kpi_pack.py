"""The marketplace KPI pack computes what docs/marketplace-schema.md says, on SQLite, PostgreSQL and MariaDB.

A small deterministic dataset (with the edge cases each KPI must handle) is inserted through SQLAlchemy;
every metric of the pack is then compared with the same KPI computed here in plain Python over the
rows that were inserted - an independent implementation of the documented definitions, not the SQL.
"""

from __future__ import annotations

import itertools
import random
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy
import yaml

from exporter.kpis.packs import PACKS
from exporter.kpis.packs import marketplace_schema as schema
from tests.helpers import StartExporter, parse_by_name, require_binary

if TYPE_CHECKING:
    from tests.databases import TestDatabase

pytest_plugins = ("tests.databases",)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WINDOW_EDGES = (HOUR, DAY, 7 * DAY, 30 * DAY)
CATEGORIES = [f"cat_{letter}" for letter in "abcdefghijklm"]  # 13: more than the pack's top 10
SKUS = [f"sku-{n:03d}" for n in range(1, 51)]  # 50: more than the pack's top 10
# The funnel's steps, in order, as docs/marketplace-schema.md defines them.
STEPS = ("product_viewed", "added_to_cart", "checkout_started", "paid")
# Each table's time column, as the freshness metric reads it.
TIME_COLUMNS = {
    "users": "created_at",
    "sessions": "started_at",
    "events": "occurred_at",
    "orders": "created_at",
    "payments": "created_at",
    "refunds": "created_at",
}

Labels = frozenset[tuple[str, str]]
Samples = dict[str, dict[Labels, float]]


def labels(**values: str) -> Labels:
    return frozenset(values.items())


@dataclass
class Dataset:
    now: datetime
    users: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    order_items: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def insert(self, engine: sqlalchemy.Engine) -> None:
        with engine.begin() as conn:
            for table in schema.TABLES:
                rows = getattr(self, table.name)
                if rows:
                    conn.execute(table.insert(), rows)


def _near_window_edge(now: datetime, *times: datetime) -> bool:
    """Keep rows 10 minutes away from every window edge, so the seconds between building the data
    and running the SQL cannot move a row across an edge."""
    return any(abs((now - t) - edge) < timedelta(minutes=10) for t in times for edge in WINDOW_EDGES)


def build_dataset(now: datetime, seed: int = 7, first_id: int = 1, sessions: int = 260) -> Dataset:
    rng = random.Random(seed)
    data = Dataset(now)
    ids = iter(range(first_id, first_id + 1_000_000))
    if first_id == 1:
        data.users = [
            {"id": i, "created_at": now - 60 * DAY, "country": rng.choice(["DE", "FR", "US"])} for i in range(1, 41)
        ]
        data.products = [
            {"id": n, "sku": sku, "name": f"Product {n}", "category": CATEGORIES[n % 13]}
            for n, sku in enumerate(SKUS, 1)
        ]
    user_weights = [1 / i for i in range(1, 41)]  # a few heavy users: DAU < WAU < MAU
    category_weights = [13 - i for i in range(13)]
    for index in range(sessions):
        # A third of the sessions in the last hour, the rest spread over 35 days (some beyond MAU's 30).
        recent = index % 3 == 0
        age = timedelta(minutes=rng.uniform(1, 50)) if recent else timedelta(seconds=rng.uniform(0, 35 * 86400))
        started = (now - age).replace(microsecond=0)
        duration = timedelta(seconds=rng.randint(5, 900))
        order_time = started + timedelta(seconds=30)
        if _near_window_edge(now, started, order_time) or order_time > now:
            continue
        session = {
            "id": next(ids),
            "user_id": None if rng.random() < 0.2 else rng.choices(range(1, 41), user_weights)[0],
            "started_at": started,
            "ended_at": None if rng.random() < 0.08 or started + duration > now else started + duration,
            "landing_page": rng.choice(["/", "/search", "/deals", "/product"]),
            "page_views": rng.choice([1, 1, 1, 2, 3, 5, 8]),
        }
        data.sessions.append(session)
        order = None
        if rng.random() < 0.35:
            order = _add_order(data, rng, ids, session, order_time, category_weights=category_weights)
        _add_events(data, rng, ids, session, order)
    _add_anomalies(data, ids)
    return data


def _add_events(
    data: Dataset, rng: random.Random, ids: Iterable[int], session: dict[str, Any], order: dict[str, Any] | None
) -> None:
    """The session's funnel events: up to a random step, or through checkout (and paid) when it ordered;
    one session in ten skips a step on the way, some view several products."""
    id_iter = iter(ids)
    if order is not None:
        paid = any(p["order_id"] == order["id"] and p["status"] == "succeeded" for p in data.payments)
        reached = list(STEPS if paid else STEPS[:3])
    else:
        reached = list(STEPS[: rng.choices(range(5), [4, 3, 2, 1, 1])[0]])
    if len(reached) >= 2 and rng.random() < 0.1:
        reached.pop(rng.randrange(len(reached) - 1))  # skipped: e.g. a cart filled from a wishlist
    types = [step for step in reached for _ in range(rng.randint(1, 3) if step == "product_viewed" else 1)]
    for offset, event_type in enumerate(types):
        data.events.append(
            {
                "id": next(id_iter),
                "session_id": session["id"],
                "user_id": session["user_id"],
                "type": event_type,
                "product_id": rng.randint(1, len(SKUS)) if event_type in STEPS[:2] else None,
                "occurred_at": session["started_at"] + timedelta(seconds=5 * offset),
            }
        )


def _add_order(
    data: Dataset,
    rng: random.Random,
    ids: Iterable[int],
    session: dict[str, Any],
    created: datetime,
    *,
    category_weights: list[int],
) -> dict[str, Any]:
    id_iter = iter(ids)
    order_id = next(id_iter)
    items = []
    for _ in range(rng.randint(1, 3)):
        item: dict[str, Any] = {
            "id": next(id_iter),
            "order_id": order_id,
            "product": rng.choices(SKUS, [1 / n for n in range(1, 51)])[0],
            "category": rng.choices(CATEGORIES, category_weights)[0],
            "quantity": rng.randint(1, 3),
            "price": Decimal(rng.randint(199, 9999)) / 100,
        }
        items.append(item)
    status = rng.choices(schema.ORDER_STATUSES, [1, 6, 2, 1])[0]
    order: dict[str, Any] = {
        "id": order_id,
        "customer_id": session["user_id"] or rng.randint(1, 40),
        "session_id": session["id"],
        "status": status,
        "currency": rng.choice(schema.CURRENCIES),
        "amount": sum((i["quantity"] * i["price"] for i in items), Decimal(0)),
        "created_at": created,
    }
    data.orders.append(order)
    data.order_items.extend(items)
    attempts = {"pending": [], "paid": ["failed"] * rng.randint(0, 1) + ["succeeded"], "cancelled": []}
    for offset, outcome in enumerate(attempts.get(status, ["failed"] * rng.randint(1, 2))):
        data.payments.append(
            {
                "id": next(id_iter),
                "order_id": order_id,
                "status": outcome,
                "failure_reason": rng.choice(schema.FAILURE_REASONS) if outcome == "failed" else None,
                "method": rng.choice(schema.PAYMENT_METHODS),
                "amount": order["amount"],
                "created_at": created + timedelta(seconds=offset),
            }
        )
    refund_time = created + timedelta(hours=rng.randint(1, 30))
    if (
        status == "paid"
        and rng.random() < 0.25
        and refund_time <= data.now
        and not _near_window_edge(data.now, refund_time)
    ):
        data.refunds.append(
            {
                "id": next(id_iter),
                "order_id": order_id,
                "amount": (order["amount"] * Decimal(rng.choice([1, 0.5]))).quantize(Decimal("0.01")),
                "kind": rng.choice(schema.REFUND_KINDS),
                "created_at": refund_time,
            }
        )
    return order


def _add_anomalies(data: Dataset, ids: Iterable[int]) -> None:
    """One of each integrity violation, plus the cases the counters must not count as money."""
    id_iter = iter(ids)
    at = (data.now - 2 * HOUR).replace(microsecond=0)
    paid = [o for o in data.orders if o["status"] == "paid"]
    orphan_session = data.sessions[-1]["id"]
    no_customer = {
        "id": next(id_iter),
        "customer_id": None,
        "session_id": orphan_session,
        "status": "paid",
        "currency": "EUR",
        "amount": Decimal("12.50"),
        "created_at": at,
    }
    negative = {**no_customer, "id": next(id_iter), "customer_id": 1, "session_id": None, "amount": Decimal("-4.00")}
    data.orders += [no_customer, negative]
    data.order_items.append(
        {
            "id": next(id_iter),
            "order_id": negative["id"],
            "product": "p",
            "category": "cat_m",
            "quantity": 1,
            "price": Decimal("-4.00"),
        }
    )
    payment = {"status": "succeeded", "failure_reason": None, "method": "card", "amount": Decimal(9), "created_at": at}
    data.payments += [
        {**payment, "id": next(id_iter), "order_id": None},
        {**payment, "id": next(id_iter), "order_id": 10_000_000},  # dangling
        {**payment, "id": next(id_iter), "order_id": paid[0]["id"], "status": "failed", "failure_reason": None},
    ]
    old_session = next(s for s in data.sessions if data.now - s["started_at"] > DAY + HOUR)
    event = {"user_id": None, "product_id": None, "occurred_at": data.now - timedelta(minutes=5)}
    data.events += [
        # A step reached today by a session that started yesterday: outside both windows' cohorts.
        {**event, "id": next(id_iter), "session_id": old_session["id"], "type": "paid"},
        {**event, "id": next(id_iter), "session_id": data.sessions[0]["id"], "type": "wishlist_added"},  # not a step
        {**event, "id": next(id_iter), "session_id": 10_000_000, "type": "product_viewed"},  # no such session
    ]
    over = paid[1]
    data.refunds += [
        {"id": next(id_iter), "order_id": over["id"], "amount": over["amount"], "kind": "refund", "created_at": at},
        {"id": next(id_iter), "order_id": over["id"], "amount": Decimal("1.00"), "kind": "return", "created_at": at},
        {
            "id": next(id_iter),
            "order_id": paid[2]["id"],
            "amount": Decimal("-2.00"),
            "kind": "refund",
            "created_at": at,
        },
    ]


# --- the KPIs, computed independently from the rows, as docs/marketplace-schema.md defines them ---


def top_with_other(values: Mapping[str, float], top_n: int) -> dict[str, float]:
    """The `top_n` largest values (ties: the first name in order), the rest summed as "other"."""
    ranking = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    top = dict(ranking[:top_n])
    if ranking[top_n:]:
        top["other"] = sum(value for _, value in ranking[top_n:])
    return top


def expected_kpis(data: Dataset, cursor: int = 0, top_n: int = 10) -> Samples:
    now = data.now
    out: Samples = defaultdict(dict)

    def within(t: datetime, window: timedelta) -> bool:
        return t >= now - window

    def active(window: timedelta) -> int:
        return len(
            {s["user_id"] for s in data.sessions if s["user_id"] is not None and within(s["started_at"], window)}
        )

    dau, wau, mau = active(DAY), active(7 * DAY), active(30 * DAY)
    out["business_daily_active_users"][labels()] = dau
    out["business_weekly_active_users"][labels()] = wau
    out["business_monthly_active_users"][labels()] = mau
    out["business_stickiness_ratio"][labels()] = dau / mau if mau else 0.0

    new_sessions = [s for s in data.sessions if s["id"] > cursor]
    out["business_sessions_total"][labels()] = len(new_sessions)

    recent = [s for s in data.sessions if within(s["started_at"], HOUR) and s["ended_at"] is not None]
    if recent:
        durations = [(s["ended_at"] - s["started_at"]).total_seconds() for s in recent]
        out["business_session_duration_average_seconds"][labels()] = sum(durations) / len(recent)
        out["business_pages_per_session_average"][labels()] = sum(s["page_views"] for s in recent) / len(recent)
        out["business_bounce_rate_ratio"][labels()] = sum(s["page_views"] <= 1 for s in recent) / len(recent)

    day_sessions = [s for s in data.sessions if within(s["started_at"], DAY)]
    ordered_sessions = {o["session_id"] for o in data.orders}
    if day_sessions:
        converted = sum(s["id"] in ordered_sessions for s in day_sessions)
        out["business_conversion_rate_ratio"][labels()] = converted / len(day_sessions)

    currency_of = {o["id"]: o["currency"] for o in data.orders}
    for order in (o for o in data.orders if o["id"] > cursor):
        key = labels(currency=order["currency"])
        out["business_orders_total"][key] = out["business_orders_total"].get(key, 0) + 1
        money = float(max(order["amount"], Decimal(0)))
        out["business_gmv_total"][key] = out["business_gmv_total"].get(key, 0) + money
    for payment in (p for p in data.payments if p["id"] > cursor and p["status"] == "succeeded"):
        key = labels(currency=currency_of.get(payment["order_id"], "unknown"))
        completed = out["business_transactions_completed_total"]
        completed[key] = completed.get(key, 0) + 1
        amount = out["business_transactions_completed_amount_total"]
        amount[key] = amount.get(key, 0) + float(max(payment["amount"], Decimal(0)))

    for order in (o for o in data.orders if within(o["created_at"], DAY)):
        key = labels(status=order["status"], currency=order["currency"])
        out["business_daily_orders"][key] = out["business_daily_orders"].get(key, 0) + 1

    steps_of: dict[int, set[str]] = defaultdict(set)
    for event in data.events:
        steps_of[event["session_id"]].add(event["type"])
    for window_name, window in (("1h", HOUR), ("24h", DAY)):
        cohort = [s["id"] for s in data.sessions if within(s["started_at"], window)]
        funnel = out["business_funnel_sessions"]
        funnel[labels(step="session_started", window=window_name)] = len(cohort)
        for reached, step in enumerate(STEPS, 1):
            funnel[labels(step=step, window=window_name)] = sum(set(STEPS[:reached]) <= steps_of[s] for s in cohort)

    paid_today = {o["id"]: o for o in data.orders if o["status"] == "paid" and within(o["created_at"], DAY)}
    orders_per_product: dict[str, set[int]] = defaultdict(set)
    revenue: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for item in data.order_items:
        if (sale := paid_today.get(item["order_id"])) is not None:
            orders_per_product[item["product"]].add(sale["id"])
            line = item["quantity"] * item["price"]
            revenue[sale["currency"]][item["product"]] += max(line, Decimal(0))
    for product, value in top_with_other({p: len(o) for p, o in orders_per_product.items()}, top_n).items():
        out["business_product_orders"][labels(product=product)] = value
    for currency, per_product in revenue.items():
        for product, value in top_with_other({p: float(v) for p, v in per_product.items()}, top_n).items():
            out["business_product_revenue"][labels(product=product, currency=currency)] = value

    for table, column in TIME_COLUMNS.items():
        newest = max((row[column] for row in getattr(data, table)), default=None)
        timestamp = newest.replace(tzinfo=UTC).timestamp() if newest is not None else 0.0
        out["business_table_newest_row_timestamp_seconds"][labels(table=table)] = timestamp

    paid_by_currency: dict[str, list[Decimal]] = defaultdict(list)
    for order in data.orders:
        if order["status"] == "paid" and within(order["created_at"], DAY):
            paid_by_currency[order["currency"]].append(order["amount"])
    for currency, amounts in paid_by_currency.items():
        out["business_average_order_value"][labels(currency=currency)] = float(sum(amounts) / len(amounts))

    for refund in (r for r in data.refunds if r["id"] > cursor):
        key = labels(kind=refund["kind"], currency=currency_of.get(refund["order_id"], "unknown"))
        out["business_refunds_total"][key] = out["business_refunds_total"].get(key, 0) + 1
        money = float(max(refund["amount"], Decimal(0)))
        out["business_refunded_amount_total"][key] = out["business_refunded_amount_total"].get(key, 0) + money

    paid_week = sum(o["status"] == "paid" and within(o["created_at"], 7 * DAY) for o in data.orders)
    refunded_week = len({r["order_id"] for r in data.refunds if within(r["created_at"], 7 * DAY)})
    if paid_week:
        out["business_refund_rate_ratio"][labels()] = refunded_week / paid_week

    for payment in (p for p in data.payments if p["id"] > cursor):
        key = labels(status=payment["status"], method=payment["method"])
        out["business_payment_attempts_total"][key] = out["business_payment_attempts_total"].get(key, 0) + 1
        if payment["status"] == "failed":
            key = labels(reason=payment["failure_reason"] or "unknown")
            out["business_payment_failures_total"][key] = out["business_payment_failures_total"].get(key, 0) + 1

    day_orders = {o["id"] for o in data.orders if within(o["created_at"], DAY)}
    orders_per_category: dict[str, set[int]] = defaultdict(set)
    for item in data.order_items:
        if item["order_id"] in day_orders:
            orders_per_category[item["category"]].add(item["order_id"])
    ranking = sorted(orders_per_category.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    for category, order_ids in ranking[:top_n]:
        out["business_category_orders"][labels(category=category)] = len(order_ids)
    if ranking[top_n:]:
        out["business_category_orders"][labels(category="other")] = sum(len(ids) for _, ids in ranking[top_n:])

    order_ids = {o["id"] for o in data.orders}
    amount_of = {o["id"]: o["amount"] for o in data.orders}
    refunded_per_order: dict[int, Decimal] = defaultdict(Decimal)
    for refund in data.refunds:
        refunded_per_order[refund["order_id"]] += refund["amount"]
    negative = sum(
        1
        for rows, column in (
            (data.orders, "amount"),
            (data.order_items, "price"),
            (data.payments, "amount"),
            (data.refunds, "amount"),
        )
        for row in rows
        if row[column] < 0
    )
    violations = out["business_integrity_violations"]
    violations[labels(check="orders_without_customer")] = sum(o["customer_id"] is None for o in data.orders)
    violations[labels(check="negative_amounts")] = negative
    violations[labels(check="payments_without_order")] = sum(p["order_id"] not in order_ids for p in data.payments)
    violations[labels(check="refunds_exceeding_order")] = sum(
        1 for order_id, total in refunded_per_order.items() if order_id in amount_of and total > amount_of[order_id]
    )
    return dict(out)


# --- running the pack's SQL the way the engine does: label columns -> labels, counters add each row ---


def run_pack(
    engine: sqlalchemy.Engine, dialect: str, cursors: Mapping[str, int] | None = None, top_n: int = 10
) -> tuple[Samples, dict[str, int]]:
    samples: Samples = defaultdict(dict)
    next_cursors: dict[str, int] = {}
    with engine.connect() as conn:
        for query in PACKS["marketplace"]("shop", dialect, top_n=top_n):
            cursor_spec = query.get("cursor")
            params = {}
            if cursor_spec:
                params["cursor"] = (cursors or {}).get(query["name"], cursor_spec["initial"])
            rows = conn.execute(sqlalchemy.text(query["sql"]), params).mappings().all()
            if cursor_spec:
                values = [int(r[cursor_spec["column"]]) for r in rows if r[cursor_spec["column"]] is not None]
                next_cursors[query["name"]] = max(values, default=params["cursor"])
            for metric in query["metrics"]:
                series = samples[metric["name"]]
                for row in rows:
                    key = frozenset((label, str(row[label])) for label in metric["labels"])
                    value = float(row[metric["value"]])
                    if metric["type"] == "counter":
                        series[key] = series.get(key, 0.0) + value
                    else:
                        assert key not in series, f"{query['name']}: two rows for one gauge series {key}"
                        series[key] = value
    return {name: series for name, series in samples.items() if series}, next_cursors


def assert_same_samples(actual: Samples, expected: Samples) -> None:
    assert sorted(actual) == sorted(expected)
    for name, series in expected.items():
        assert set(actual[name]) == set(series), name
        # Unix times are large: a relative tolerance would hide minutes; 1 ms is what the SQL can keep.
        rel, abs_ = (0.0, 1e-3) if name.endswith("_timestamp_seconds") else (1e-6, 1e-9)
        for key, value in series.items():
            assert actual[name][key] == pytest.approx(value, rel=rel, abs=abs_), (name, dict(key))


@pytest.fixture
def marketplace_db(fresh_database: TestDatabase) -> tuple[TestDatabase, sqlalchemy.Engine]:
    engine = fresh_database.engine()
    schema.metadata.create_all(engine)
    return fresh_database, engine


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def test_every_kpi_matches_an_independent_computation(marketplace_db: tuple[TestDatabase, sqlalchemy.Engine]) -> None:
    database, engine = marketplace_db
    data = build_dataset(utc_now())
    data.insert(engine)
    actual, _ = run_pack(engine, database.dialect)
    expected = expected_kpis(data)
    # The dataset exercises every metric of the pack, with more than one label value where there are labels.
    every_metric = {m["name"] for q in PACKS["marketplace"]("shop", database.dialect) for m in q["metrics"]}
    assert set(expected) == every_metric
    assert len(expected["business_category_orders"]) == 11  # top 10 + "other"
    assert len(expected["business_product_orders"]) == 11
    assert all(v > 0 for v in expected["business_integrity_violations"].values())
    # The funnel narrows, and some sessions skipped a step (they stop counting at the step before the gap).
    funnel = expected["business_funnel_sessions"]
    for window in ("1h", "24h"):
        counts = [funnel[labels(step=step, window=window)] for step in ("session_started", *STEPS)]
        assert counts == sorted(counts, reverse=True), (window, counts)
        assert counts[-1] > 0, (window, counts)
    assert sessions_that_skipped_a_step(data, within=DAY), "the dataset should have a session that skipped a step"
    assert_same_samples(actual, expected)


def sessions_that_skipped_a_step(data: Dataset, within: timedelta) -> set[int]:
    """Sessions started within `within` of now with an event of a step whose previous step they lack."""
    types: dict[int, set[str]] = defaultdict(set)
    for event in data.events:
        types[event["session_id"]].add(event["type"])
    return {
        s["id"]
        for s in data.sessions
        if data.now - s["started_at"] <= within
        and any(
            later in types[s["id"]] and earlier not in types[s["id"]] for earlier, later in itertools.pairwise(STEPS)
        )
    }


def test_an_empty_database_gives_zero_counts_and_no_averages(
    marketplace_db: tuple[TestDatabase, sqlalchemy.Engine],
) -> None:
    """No rows at all: counts are 0 (a funnel of 0 sessions, freshness 0 = "never"), averages and ratios
    are absent rather than a misleading 0, and counters have nothing to add."""
    database, engine = marketplace_db
    actual, cursors = run_pack(engine, database.dialect)
    expected = expected_kpis(Dataset(utc_now()))
    assert expected["business_table_newest_row_timestamp_seconds"][labels(table="orders")] == 0
    assert all(v == 0 for v in expected["business_funnel_sessions"].values())
    assert "business_orders_total" not in expected
    assert "business_conversion_rate_ratio" not in expected
    assert_same_samples(actual, expected)
    assert set(cursors.values()) == {0}


def test_top_products_break_ties_by_sku_and_sum_the_rest_as_other(
    marketplace_db: tuple[TestDatabase, sqlalchemy.Engine],
) -> None:
    """Four products tie for the top 2: the first two SKUs win; only paid orders of the last 24 hours count."""
    database, engine = marketplace_db
    now = utc_now()
    data = Dataset(now)
    order = {"customer_id": 1, "session_id": None, "status": "paid", "amount": Decimal(10), "created_at": now - HOUR}
    data.orders = [{**order, "id": i, "currency": "GBP" if i == 7 else "EUR"} for i in range(1, 8)] + [
        {**order, "id": 8, "currency": "EUR", "status": "pending"},  # not paid: not a sale
        {**order, "id": 9, "currency": "EUR", "created_at": now - 2 * DAY},  # too old
    ]
    items = [("sku-c", 1), ("sku-c", 2), ("sku-a", 3), ("sku-a", 4), ("sku-b", 5), ("sku-b", 6), ("sku-d", 1)]
    items += [("sku-d", 7), ("sku-e", 8), ("sku-e", 9), ("sku-e", 8)]
    data.order_items = [
        {"id": n, "order_id": order_id, "product": sku, "category": "cat_a", "quantity": 2, "price": Decimal(5)}
        for n, (sku, order_id) in enumerate(items, 1)
    ]
    data.insert(engine)
    actual, _ = run_pack(engine, database.dialect, top_n=2)
    expected = expected_kpis(data, top_n=2)
    assert expected["business_product_orders"] == {
        labels(product="sku-a"): 2,
        labels(product="sku-b"): 2,
        labels(product="other"): 4,  # sku-c's 2 and sku-d's 2 (a four-way tie)
    }
    assert expected["business_product_revenue"] == {
        labels(product="sku-a", currency="EUR"): 20.0,
        labels(product="sku-b", currency="EUR"): 20.0,
        labels(product="other", currency="EUR"): 30.0,
        labels(product="sku-d", currency="GBP"): 10.0,  # each currency has its own top
    }
    assert_same_samples(actual, expected)


def test_a_pending_order_paid_later_is_placed_once_and_moves_to_paid(
    marketplace_db: tuple[TestDatabase, sqlalchemy.Engine],
) -> None:
    """The placed counter counts the order once, when it appears; its payment adds a completed
    transaction when it appears; the daily gauge follows the order's current status."""
    database, engine = marketplace_db
    now = utc_now()
    data = Dataset(now)
    data.orders = [
        {"id": 1, "customer_id": 7, "session_id": None, "status": "pending", "currency": "EUR",
         "amount": Decimal("20.00"), "created_at": now - timedelta(minutes=10)},
    ]  # fmt: skip
    data.insert(engine)
    first, cursors = run_pack(engine, database.dialect)
    assert first["business_orders_total"] == {labels(currency="EUR"): 1}
    assert first["business_daily_orders"] == {labels(status="pending", currency="EUR"): 1}
    assert "business_transactions_completed_total" not in first
    assert_same_samples(first, expected_kpis(data))

    payment = {"id": 2, "order_id": 1, "status": "succeeded", "failure_reason": None, "method": "bank_transfer",
               "amount": Decimal("20.00"), "created_at": now}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(schema.orders.update().where(schema.orders.c.id == 1).values(status="paid"))
        conn.execute(schema.payments.insert(), [payment])
    data.orders[0]["status"] = "paid"
    data.payments.append(payment)
    second, _ = run_pack(engine, database.dialect, cursors)
    assert "business_orders_total" not in second  # no new order: nothing to add
    assert second["business_transactions_completed_total"] == {labels(currency="EUR"): 1}
    assert second["business_transactions_completed_amount_total"] == {labels(currency="EUR"): 20.0}
    assert second["business_daily_orders"] == {labels(status="paid", currency="EUR"): 1}
    assert_same_samples(second, expected_kpis(data, cursor=1))


def test_counters_read_only_rows_newer_than_their_cursor(
    marketplace_db: tuple[TestDatabase, sqlalchemy.Engine],
) -> None:
    database, engine = marketplace_db
    first = build_dataset(utc_now())
    first.insert(engine)
    _, cursors = run_pack(engine, database.dialect)
    newest = max(row["id"] for table in schema.TABLES for row in getattr(first, table.name))
    second = build_dataset(utc_now(), seed=8, first_id=newest + 1, sessions=60)
    second.insert(engine)
    actual, _ = run_pack(engine, database.dialect, cursors)
    counters = {name for name in actual if name.endswith("_total")}
    combined = Dataset(second.now)
    for table in schema.TABLES:
        setattr(combined, table.name, getattr(first, table.name) + getattr(second, table.name))
    increments = {
        name: series
        for name, series in expected_kpis(combined, cursor=newest).items()
        if name in counters or name.endswith("_total")
    }
    assert_same_samples({name: actual[name] for name in counters}, increments)
    # Nothing new since the last run: no increment at all, and the cursors stay where they were.
    _, again = run_pack(engine, database.dialect, cursors)
    repeat, unchanged = run_pack(engine, database.dialect, again)
    assert unchanged == again
    assert all(value == 0 for name in counters for value in repeat.get(name, {}).values())


def test_top_n_is_bounded() -> None:
    assert "top 3 products" in str(PACKS["marketplace"]("shop", "sqlite", top_n=3))
    for wrong in (0, 51):
        with pytest.raises(ValueError, match=f"top_n must be between 1 and 50, not {wrong}"):
            PACKS["marketplace"]("shop", "sqlite", top_n=wrong)


def test_the_pack_refuses_a_dialect_it_has_no_sql_for() -> None:
    with pytest.raises(ValueError, match="sqlite, postgresql and mysql/mariadb, not 'oracle'"):
        PACKS["marketplace"]("shop", "oracle")
    assert PACKS["marketplace"]("shop", "mariadb") == PACKS["marketplace"]("shop", "mysql")


def test_names_follow_prometheus_conventions() -> None:
    for query in PACKS["marketplace"]("shop", "sqlite"):
        assert query["source"] == "shop"
        for metric in query["metrics"]:
            assert metric["name"].startswith("business_")
            assert metric["name"].endswith("_total") == (metric["type"] == "counter")
            assert metric["help"]
            assert not {"user_id", "order_id", "session_id", "customer_id", "id"} & set(metric["labels"])


def exposed_samples(text: str) -> Samples:
    """The pack's samples in an exposition, in the shape `expected_kpis` computes."""
    return {
        name: {frozenset(labels): value for labels, value in series.items()}
        for name, series in parse_by_name(text).items()
        if name.startswith("business_")
    }


def test_a_real_exporter_serves_every_kpi_of_the_pack(
    marketplace_db: tuple[TestDatabase, sqlalchemy.Engine], start_exporter: StartExporter
) -> None:
    """The pack through K1's engine in a pulse-exporter process: `packs: [{pack: marketplace}]` exposes
    what the independent computation expects, with counters' `_total` and every query succeeding."""
    database, engine = marketplace_db
    data = build_dataset(utc_now())
    data.insert(engine)
    config = {
        "collectors": {"host": {"enabled": False}},
        "kpis": {
            "sources": {"shop": {"dsn": database.reader_url}},
            "packs": [{"pack": "marketplace", "source": "shop"}],
        },
    }
    exporter = start_exporter(yaml.safe_dump(config))
    query_names = [q["name"] for q in PACKS["marketplace"]("shop", database.dialect)]
    exporter.wait_for_samples(
        lambda s: all(s.get(f'pulse_kpi_query_success{{query="{name}"}}') == 1 for name in query_names),
        "every query of the pack succeeding",
        timeout=60,
    )
    text = exporter.metrics_text()
    assert_same_samples(exposed_samples(text), expected_kpis(data))
    assert 'pulse_kpi_source_up{source="shop"} 1' in text
    # Names, HELP and types pass Prometheus' own linter.
    promtool = require_binary("promtool")
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
