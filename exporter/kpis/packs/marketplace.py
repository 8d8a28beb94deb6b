"""The `marketplace` KPI pack: ready queries over the reference schema (marketplace_schema.py).

`queries(source, dialect)` returns query dicts in the `kpis.queries` config format. The SQL is written
once; only the few dialect-specific pieces (time arithmetic, identifier quoting) come from `_Dialect`, so
SQLite, PostgreSQL and MariaDB/MySQL run the same definitions. docs/marketplace-schema.md documents every
metric. Conventions: names start with `business_`, money is in the currency's major unit, ratios are
0-1, durations are seconds, and no label carries a user, order or session id.

Windows are rolling and end at the database's clock (UTC): "last 24 hours" (named "daily"), not "today".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The behaviour-flow funnel's steps, in order: the `type` of an `events` row (marketplace_schema.py).
# Here, not in the schema module, so that loading a config never imports SQLAlchemy.
FUNNEL_STEPS = ("product_viewed", "added_to_cart", "checkout_started", "paid")
HOUR = 3600
DAY = 24 * HOUR
# Products and categories with their own label value (the rest are summed as "other"): `top_n` in a
# `packs:` entry, TOP_N by default, at most MAX_TOP_N so that the series stay few.
TOP_N = 10
MAX_TOP_N = 50
FUNNEL_WINDOWS = (("1h", HOUR), ("24h", DAY))
# Key tables and the column that dates their rows: the freshness of each (a stopped sync shows).
FRESHNESS_COLUMNS = (
    ("users", "created_at"),
    ("sessions", "started_at"),
    ("events", "occurred_at"),
    ("orders", "created_at"),
    ("payments", "created_at"),
    ("refunds", "created_at"),
)


@dataclass(frozen=True)
class _Dialect:
    """The SQL pieces that differ between SQLite, PostgreSQL and MariaDB/MySQL."""

    name: str

    def ago(self, seconds: int) -> str:
        """The UTC timestamp `seconds` before now, comparable with the schema's naive-UTC columns."""
        if self.name == "sqlite":
            # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff': text order is time order.
            return f"datetime('now', '-{seconds} seconds')"
        if self.name == "postgresql":
            return f"((now() AT TIME ZONE 'UTC') - interval '{seconds} seconds')"
        return f"(UTC_TIMESTAMP() - INTERVAL {seconds} SECOND)"

    def now(self) -> str:
        """The current UTC time, comparable with the schema's naive-UTC columns."""
        if self.name == "sqlite":
            return "datetime('now')"
        if self.name == "postgresql":
            return "(now() AT TIME ZONE 'UTC')"
        return "UTC_TIMESTAMP()"

    def unix_seconds(self, timestamp: str) -> str:
        """Seconds since 1970-01-01 UTC of a naive-UTC timestamp (MySQL's UNIX_TIMESTAMP() would read it
        in the session's time zone)."""
        if self.name == "sqlite":
            return f"((julianday({timestamp}) - 2440587.5) * 86400.0)"
        if self.name == "postgresql":
            return f"EXTRACT(EPOCH FROM {timestamp})"
        return f"(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {timestamp}) / 1e6)"

    def seconds_between(self, start: str, end: str) -> str:
        if self.name == "sqlite":
            return f"((julianday({end}) - julianday({start})) * 86400.0)"
        if self.name == "postgresql":
            return f"EXTRACT(EPOCH FROM ({end} - {start}))"
        return f"(TIMESTAMPDIFF(MICROSECOND, {start}, {end}) / 1e6)"

    def quote(self, identifier: str) -> str:
        """Quote a column alias that is a reserved word (`check`, `window`, `table`)."""
        return f"`{identifier}`" if self.name == "mysql" else f'"{identifier}"'


def _dialect(name: str) -> _Dialect:
    normalized = {"mariadb": "mysql", "postgres": "postgresql"}.get(name, name)
    if normalized not in ("sqlite", "postgresql", "mysql"):
        raise ValueError(f"the marketplace pack has SQL for sqlite, postgresql and mysql/mariadb, not {name!r}")
    return _Dialect(normalized)


def _metric(name: str, type_: str, value: str, help_: str, labels: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"name": name, "type": type_, "value": value, "labels": list(labels), "help": help_}


def _query(
    name: str, source: str, timing: tuple[str, str], sql: str, metrics: list[dict[str, Any]], *, cursor: bool = False
) -> dict[str, Any]:
    """`timing`: (interval, timeout)."""
    interval, timeout = timing
    query: dict[str, Any] = {
        "name": name,
        "source": source,
        "interval": interval,
        "timeout": timeout,
        "sql": " ".join(sql.split()),  # one line: readable in logs and on the landing page
        "metrics": metrics,
    }
    if cursor:
        query["cursor"] = {"column": "last_id", "initial": 0}
    return query


def queries(source: str, dialect: str, *, top_n: int = TOP_N) -> list[dict[str, Any]]:
    """The pack's queries for `source`, whose SQLAlchemy dialect is `dialect`; `top_n` products and
    categories get their own label value."""
    d = _dialect(dialect)
    if not 1 <= top_n <= MAX_TOP_N:
        raise ValueError(f"top_n must be between 1 and {MAX_TOP_N}, not {top_n}")
    p = "marketplace_"  # query names: distinct from a user's own queries on the same exporter
    return [
        _query(
            p + "active_users",
            source,
            ("5m", "60s"),
            f"""
            SELECT dau, wau, mau, CASE WHEN mau > 0 THEN 1e0 * dau / mau ELSE 0 END AS stickiness
            FROM (
              SELECT COUNT(DISTINCT CASE WHEN started_at >= {d.ago(DAY)} THEN user_id END) AS dau,
                     COUNT(DISTINCT CASE WHEN started_at >= {d.ago(7 * DAY)} THEN user_id END) AS wau,
                     COUNT(DISTINCT user_id) AS mau
              FROM sessions
              WHERE started_at >= {d.ago(30 * DAY)} AND user_id IS NOT NULL
            ) t
            """,
            [
                _metric("business_daily_active_users", "gauge", "dau", "Users with a session in the last 24 hours."),
                _metric("business_weekly_active_users", "gauge", "wau", "Users with a session in the last 7 days."),
                _metric("business_monthly_active_users", "gauge", "mau", "Users with a session in the last 30 days."),
                _metric(
                    "business_stickiness_ratio",
                    "gauge",
                    "stickiness",
                    "Daily over monthly active users (DAU/MAU), 0-1; 0 when there is no active user.",
                ),
            ],
        ),
        _query(
            p + "sessions",
            source,
            ("30s", "10s"),
            "SELECT COUNT(*) AS sessions, COALESCE(MAX(id), :cursor) AS last_id FROM sessions WHERE id > :cursor",
            [_metric("business_sessions_total", "counter", "sessions", "Sessions started (visits).")],
            cursor=True,
        ),
        _query(
            p + "session_quality",
            source,
            ("1m", "30s"),
            f"""
            SELECT avg_duration, pages_per_session, bounce_rate FROM (
              SELECT COUNT(*) AS sessions,
                     AVG({d.seconds_between("started_at", "ended_at")}) AS avg_duration,
                     AVG(1e0 * page_views) AS pages_per_session,
                     AVG(CASE WHEN page_views <= 1 THEN 1e0 ELSE 0e0 END) AS bounce_rate
              FROM sessions
              WHERE started_at >= {d.ago(HOUR)} AND ended_at IS NOT NULL
            ) t WHERE sessions > 0
            """,
            [
                _metric(
                    "business_session_duration_average_seconds",
                    "gauge",
                    "avg_duration",
                    "Average duration of the sessions that started in the last hour and have ended.",
                ),
                _metric(
                    "business_pages_per_session_average",
                    "gauge",
                    "pages_per_session",
                    "Average page views per session, sessions started in the last hour and ended.",
                ),
                _metric(
                    "business_bounce_rate_ratio",
                    "gauge",
                    "bounce_rate",
                    "Share of single-page sessions (0-1), sessions started in the last hour and ended.",
                ),
            ],
        ),
        _query(
            p + "conversion",
            source,
            ("1m", "30s"),
            f"""
            SELECT 1e0 * converted / sessions AS conversion_rate FROM (
              SELECT COUNT(*) AS sessions,
                     SUM(CASE WHEN EXISTS (SELECT 1 FROM orders o WHERE o.session_id = s.id) THEN 1 ELSE 0 END)
                       AS converted
              FROM sessions s
              WHERE s.started_at >= {d.ago(DAY)}
            ) t WHERE sessions > 0
            """,
            [
                _metric(
                    "business_conversion_rate_ratio",
                    "gauge",
                    "conversion_rate",
                    "Sessions started in the last 24 hours that placed an order, over those sessions (0-1).",
                )
            ],
        ),
        _query(
            p + "orders",
            source,
            ("30s", "10s"),
            """
            SELECT currency, COUNT(*) AS orders,
                   SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END) AS gmv, MAX(id) AS last_id
            FROM orders WHERE id > :cursor GROUP BY currency
            """,
            [
                _metric(
                    "business_orders_total",
                    "counter",
                    "orders",
                    "Orders placed, whatever their status (counted once, when the order row appears).",
                    ("currency",),
                ),
                _metric(
                    "business_gmv_total",
                    "counter",
                    "gmv",
                    "Gross merchandise value of the orders placed, whatever their status, in the currency's "
                    "major unit (negative amounts excluded: see business_integrity_violations).",
                    ("currency",),
                ),
            ],
            cursor=True,
        ),
        _query(
            p + "transactions",
            source,
            ("30s", "10s"),
            """
            SELECT COALESCE(o.currency, 'unknown') AS currency, COUNT(*) AS transactions,
                   SUM(CASE WHEN p.amount > 0 THEN p.amount ELSE 0 END) AS amount, MAX(p.id) AS last_id
            FROM payments p LEFT JOIN orders o ON o.id = p.order_id
            WHERE p.id > :cursor AND p.status = 'succeeded'
            GROUP BY COALESCE(o.currency, 'unknown')
            """,
            [
                _metric(
                    "business_transactions_completed_total",
                    "counter",
                    "transactions",
                    "Transactions completed: payments that succeeded, by the currency of their order "
                    "(unknown when the order is missing).",
                    ("currency",),
                ),
                _metric(
                    "business_transactions_completed_amount_total",
                    "counter",
                    "amount",
                    "Amount of the payments that succeeded, in the currency's major unit (negative amounts excluded).",
                    ("currency",),
                ),
            ],
            cursor=True,
        ),
        _query(
            p + "daily_orders",
            source,
            ("1m", "30s"),
            f"""
            SELECT status, currency, COUNT(*) AS orders
            FROM orders WHERE created_at >= {d.ago(DAY)} GROUP BY status, currency
            """,
            [
                _metric(
                    "business_daily_orders",
                    "gauge",
                    "orders",
                    "Orders placed in the last 24 hours, by their current status and currency.",
                    ("status", "currency"),
                )
            ],
        ),
        _query(
            p + "average_order_value",
            source,
            ("1m", "30s"),
            f"""
            SELECT currency, SUM(amount) / COUNT(*) AS average_order_value
            FROM orders WHERE created_at >= {d.ago(DAY)} AND status = 'paid' GROUP BY currency
            """,
            [
                _metric(
                    "business_average_order_value",
                    "gauge",
                    "average_order_value",
                    "Average amount of the paid orders placed in the last 24 hours, in the currency's major unit.",
                    ("currency",),
                )
            ],
        ),
        _query(
            p + "refunds",
            source,
            ("30s", "10s"),
            """
            SELECT r.kind AS kind, COALESCE(o.currency, 'unknown') AS currency, COUNT(*) AS refunds,
                   SUM(CASE WHEN r.amount > 0 THEN r.amount ELSE 0 END) AS refunded, MAX(r.id) AS last_id
            FROM refunds r LEFT JOIN orders o ON o.id = r.order_id
            WHERE r.id > :cursor GROUP BY r.kind, COALESCE(o.currency, 'unknown')
            """,
            [
                _metric(
                    "business_refunds_total",
                    "counter",
                    "refunds",
                    "Refunds (kind=refund) and returns (kind=return) recorded.",
                    ("kind", "currency"),
                ),
                _metric(
                    "business_refunded_amount_total",
                    "counter",
                    "refunded",
                    "Amount refunded, in the currency's major unit (negative amounts excluded).",
                    ("kind", "currency"),
                ),
            ],
            cursor=True,
        ),
        _query(
            p + "refund_rate",
            source,
            ("5m", "60s"),
            f"""
            SELECT 1e0 * refunded / orders AS refund_rate FROM (
              SELECT (SELECT COUNT(*) FROM orders WHERE status = 'paid' AND created_at >= {d.ago(7 * DAY)})
                       AS orders,
                     (SELECT COUNT(DISTINCT order_id) FROM refunds WHERE created_at >= {d.ago(7 * DAY)})
                       AS refunded
            ) t WHERE orders > 0
            """,
            [
                _metric(
                    "business_refund_rate_ratio",
                    "gauge",
                    "refund_rate",
                    "Orders refunded or returned in the last 7 days over paid orders placed in the last 7 days.",
                )
            ],
        ),
        _query(
            p + "payment_attempts",
            source,
            ("30s", "10s"),
            """
            SELECT status, method, COUNT(*) AS attempts, MAX(id) AS last_id
            FROM payments WHERE id > :cursor GROUP BY status, method
            """,
            [
                _metric(
                    "business_payment_attempts_total",
                    "counter",
                    "attempts",
                    "Payment attempts, by outcome (succeeded|failed) and payment method.",
                    ("status", "method"),
                )
            ],
            cursor=True,
        ),
        _query(
            p + "payment_failures",
            source,
            ("30s", "10s"),
            """
            SELECT COALESCE(failure_reason, 'unknown') AS reason, COUNT(*) AS failures, MAX(id) AS last_id
            FROM payments WHERE id > :cursor AND status = 'failed' GROUP BY COALESCE(failure_reason, 'unknown')
            """,
            [
                _metric(
                    "business_payment_failures_total",
                    "counter",
                    "failures",
                    "Failed payment attempts, by failure reason.",
                    ("reason",),
                )
            ],
            cursor=True,
        ),
        _query(
            p + "top_categories",
            source,
            ("5m", "60s"),
            f"""
            WITH counts AS (
              SELECT i.category AS category, COUNT(DISTINCT i.order_id) AS orders
              FROM order_items i JOIN orders o ON o.id = i.order_id
              WHERE o.created_at >= {d.ago(DAY)}
              GROUP BY i.category
            ), ranked AS (
              SELECT category, orders, ROW_NUMBER() OVER (ORDER BY orders DESC, category) AS place FROM counts
            )
            SELECT CASE WHEN place <= {top_n} THEN category ELSE 'other' END AS category,
                   SUM(orders) AS orders
            FROM ranked
            GROUP BY CASE WHEN place <= {top_n} THEN category ELSE 'other' END
            """,
            [
                _metric(
                    "business_category_orders",
                    "gauge",
                    "orders",
                    f"Orders of the last 24 hours containing the category: the top {top_n} categories, "
                    'the rest summed as category="other".',
                    ("category",),
                )
            ],
        ),
        _query(
            p + "integrity",
            source,
            ("5m", "60s"),
            f"""
            SELECT 'orders_without_customer' AS {d.quote("check")}, COUNT(*) AS violations
              FROM orders WHERE customer_id IS NULL
            UNION ALL
            SELECT 'negative_amounts',
                   (SELECT COUNT(*) FROM orders WHERE amount < 0) + (SELECT COUNT(*) FROM order_items WHERE price < 0)
                   + (SELECT COUNT(*) FROM payments WHERE amount < 0) + (SELECT COUNT(*) FROM refunds WHERE amount < 0)
            UNION ALL
            SELECT 'payments_without_order', COUNT(*) FROM payments p
              WHERE p.order_id IS NULL OR NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = p.order_id)
            UNION ALL
            SELECT 'refunds_exceeding_order', COUNT(*) FROM (
              SELECT r.order_id FROM refunds r JOIN orders o ON o.id = r.order_id
              GROUP BY r.order_id, o.amount HAVING SUM(r.amount) > o.amount
            ) x
            """,
            [
                _metric(
                    "business_integrity_violations",
                    "gauge",
                    "violations",
                    "Rows breaking a data-integrity rule: orders without a customer, negative amounts, "
                    "payments without an order, orders refunded more than their amount.",
                    ("check",),
                )
            ],
        ),
        _behaviour_flow(d, p, source),
        *_top_products(d, p, source, top_n),
        _freshness(d, p, source),
    ]


def _behaviour_flow(d: _Dialect, p: str, source: str) -> dict[str, Any]:
    """The funnel: sessions started in each window, and how many of them reached each step.

    Strict: a session reaches a step when it has an event of that step and of every step before it (at
    any time since it started, in any order), so the counts never grow from one step to the next.
    """
    flags = ",\n".join(
        f"MAX(CASE WHEN e.type = '{step}' THEN 1 ELSE 0 END) AS s{n}" for n, step in enumerate(FUNNEL_STEPS, 1)
    )
    # reached_n: the session reached steps 1..n (0: it started).
    reached = ["1", *("*".join(f"s{k}" for k in range(1, n + 1)) for n in range(1, len(FUNNEL_STEPS) + 1))]
    sums = ",\n".join(
        f"SUM(CASE WHEN started_at >= {d.ago(seconds)} THEN {expr} ELSE 0 END) AS w{w}_s{n}"
        for w, (_, seconds) in enumerate(FUNNEL_WINDOWS)
        for n, expr in enumerate(reached)
    )
    # One row per (step, window) from the single row of totals: a CTE read once (MariaDB would
    # compute it again for every reference).
    steps = ("session_started", *FUNNEL_STEPS)
    series = [
        (step, window, f"w{w}_s{n}") for w, (window, _) in enumerate(FUNNEL_WINDOWS) for n, step in enumerate(steps)
    ]
    labels = " UNION ALL ".join(
        f"SELECT '{step}' AS step, '{window}' AS win, '{column}' AS k" for step, window, column in series
    )
    pick = " ".join(f"WHEN '{column}' THEN t.{column}" for _, _, column in series)
    longest = max(seconds for _, seconds in FUNNEL_WINDOWS)
    sql = f"""
        WITH per_session AS (
          SELECT s.started_at AS started_at, {flags}
          FROM sessions s LEFT JOIN events e ON e.session_id = s.id
          WHERE s.started_at >= {d.ago(longest)}
          GROUP BY s.id, s.started_at
        ), totals AS (
          SELECT {sums} FROM per_session
        )
        SELECT l.step AS step, l.win AS {d.quote("window")}, COALESCE(CASE l.k {pick} END, 0) AS sessions
        FROM totals t CROSS JOIN ({labels}) l
        """
    return _query(
        p + "behaviour_flow",
        source,
        ("1m", "30s"),
        sql,
        [
            _metric(
                "business_funnel_sessions",
                "gauge",
                "sessions",
                "Sessions started in the window (1h|24h) that reached the funnel step and every step "
                "before it: session_started, product_viewed, added_to_cart, checkout_started, paid.",
                ("step", "window"),
            )
        ],
    )


def _top_products(d: _Dialect, p: str, source: str, top_n: int) -> list[dict[str, Any]]:
    """Best sellers of the last 24 hours (paid orders): the top `top_n` products by orders, and by revenue
    in each currency; the rest summed as product="other". Ties go to the first product in SKU order."""
    paid_items = f"""
        FROM order_items i JOIN orders o ON o.id = i.order_id
        WHERE o.created_at >= {d.ago(DAY)} AND o.status = 'paid'
        """
    label = f"CASE WHEN place <= {top_n} THEN product ELSE 'other' END"
    return [
        _query(
            p + "top_products",
            source,
            ("5m", "60s"),
            f"""
            WITH counts AS (
              SELECT i.product AS product, COUNT(DISTINCT i.order_id) AS orders {paid_items}
              GROUP BY i.product
            ), ranked AS (
              SELECT product, orders, ROW_NUMBER() OVER (ORDER BY orders DESC, product) AS place FROM counts
            )
            SELECT {label} AS product, SUM(orders) AS orders FROM ranked GROUP BY {label}
            """,
            [
                _metric(
                    "business_product_orders",
                    "gauge",
                    "orders",
                    f"Paid orders of the last 24 hours containing the product (SKU): the top {top_n} products, "
                    'the rest summed as product="other".',
                    ("product",),
                )
            ],
        ),
        _query(
            p + "top_products_revenue",
            source,
            ("5m", "60s"),
            f"""
            WITH revenue AS (
              SELECT i.product AS product, o.currency AS currency,
                     SUM(CASE WHEN i.price > 0 THEN i.quantity * i.price ELSE 0 END) AS revenue {paid_items}
              GROUP BY i.product, o.currency
            ), ranked AS (
              SELECT product, currency, revenue,
                     ROW_NUMBER() OVER (PARTITION BY currency ORDER BY revenue DESC, product) AS place
              FROM revenue
            )
            SELECT {label} AS product, currency, SUM(revenue) AS revenue
            FROM ranked GROUP BY {label}, currency
            """,
            [
                _metric(
                    "business_product_revenue",
                    "gauge",
                    "revenue",
                    "Revenue (quantity x unit price) of the product in the paid orders of the last 24 hours, in "
                    f"the currency's major unit: the top {top_n} products of each currency, the rest summed as "
                    'product="other".',
                    ("product", "currency"),
                )
            ],
        ),
    ]


def _freshness(d: _Dialect, p: str, source: str) -> dict[str, Any]:
    """When the newest row of each key table was dated: a stopped writer, sync or ETL shows as an age that
    grows (time() - the value). 0 for an empty table, like Prometheus' own *_timestamp_seconds for "never"."""
    rows = "\nUNION ALL\n".join(
        f"SELECT '{table}' AS {d.quote('table')}, COALESCE({d.unix_seconds(f'MAX({column})')}, 0) AS newest "
        f"FROM {table}"
        for table, column in FRESHNESS_COLUMNS
    )
    return _query(
        p + "freshness",
        source,
        ("1m", "30s"),
        rows,
        [
            _metric(
                "business_table_newest_row_timestamp_seconds",
                "gauge",
                "newest",
                "Unix time of the newest row of the table, by its time column (0 when the table is empty).",
                ("table",),
            )
        ],
    )
