"""The `marketplace` KPI pack: ready queries over the reference schema (marketplace_schema.py).

`queries(source, dialect)` returns query dicts in the `kpis.queries` config format. The SQL is written
once; only the few dialect-specific pieces (time arithmetic, identifier quoting) come from `_Dialect`, so
SQLite, PostgreSQL and MariaDB/MySQL run the same definitions. docs/marketplace-schema.md documents every
metric. Conventions: names start with `business_`, money is in the currency's major unit, ratios are
0-1, durations are seconds, and no label carries a user, order or session id.

Windows are rolling and end at the database's clock (UTC): "last 24 hours", not "today".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HOUR = 3600
DAY = 24 * HOUR
TOP_CATEGORIES = 10  # top categories by orders get their own label value; the rest are summed as "other"


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

    def seconds_between(self, start: str, end: str) -> str:
        if self.name == "sqlite":
            return f"((julianday({end}) - julianday({start})) * 86400.0)"
        if self.name == "postgresql":
            return f"EXTRACT(EPOCH FROM ({end} - {start}))"
        return f"(TIMESTAMPDIFF(MICROSECOND, {start}, {end}) / 1e6)"

    def quote(self, identifier: str) -> str:
        """Quote a column alias that is a reserved word (`check`)."""
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


def queries(source: str, dialect: str) -> list[dict[str, Any]]:
    """The pack's queries for `source`, whose SQLAlchemy dialect is `dialect`."""
    d = _dialect(dialect)
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
            SELECT status, currency, COUNT(*) AS orders,
                   SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END) AS gmv, MAX(id) AS last_id
            FROM orders WHERE id > :cursor GROUP BY status, currency
            """,
            [
                _metric(
                    "business_orders_total",
                    "counter",
                    "orders",
                    "Orders placed, by their status when first read and currency.",
                    ("status", "currency"),
                ),
                _metric(
                    "business_gmv_total",
                    "counter",
                    "gmv",
                    "Gross merchandise value of the orders placed, in the currency's major unit "
                    "(negative amounts excluded: see business_integrity_violations).",
                    ("status", "currency"),
                ),
            ],
            cursor=True,
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
            SELECT CASE WHEN place <= {TOP_CATEGORIES} THEN category ELSE 'other' END AS category,
                   SUM(orders) AS orders
            FROM ranked
            GROUP BY CASE WHEN place <= {TOP_CATEGORIES} THEN category ELSE 'other' END
            """,
            [
                _metric(
                    "business_category_orders",
                    "gauge",
                    "orders",
                    f"Orders of the last 24 hours containing the category: the top {TOP_CATEGORIES} categories, "
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
    ]
