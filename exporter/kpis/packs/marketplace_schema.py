"""The marketplace reference schema that the `marketplace` KPI pack reads (docs/marketplace-schema.md).

SQLAlchemy Core, so one definition creates the tables on SQLite, PostgreSQL and MariaDB/MySQL (the
demo generator and the tests use it). An existing shop whose tables differ can map onto it with views.

Conventions the pack relies on:
- Timestamps are naive UTC (`DATETIME` / `timestamp without time zone`).
- Money is `NUMERIC(12, 2)` in the currency's major unit (euros, not cents); `currency` is ISO 4217.
- `id` columns increase with insertion time: the pack's counters use them as cursors.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
)
from sqlalchemy.dialects import sqlite

metadata = MetaData()

# BIGINT ids, except on SQLite where only INTEGER PRIMARY KEY is the auto-incrementing rowid.
Id = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")
Money = Numeric(12, 2, asdecimal=True)

ORDER_STATUSES = ("pending", "paid", "payment_failed", "cancelled")
CURRENCIES = ("EUR", "USD", "GBP")
PAYMENT_STATUSES = ("succeeded", "failed")
PAYMENT_METHODS = ("card", "paypal", "bank_transfer")
FAILURE_REASONS = (
    "card_declined",
    "insufficient_funds",
    "expired_card",
    "authentication_failed",
    "fraud_suspected",
    "processing_error",
)
REFUND_KINDS = ("refund", "return")


def _table(name: str, *columns: Column[Any], indexed: tuple[str | tuple[str, ...], ...] = ()) -> Table:
    """A table of the schema: its `id` first (increasing with insertion time: the pack's cursors), then
    `columns`, and an index `ix_<table>_<column>[_<column>...]` on each `indexed` column or column tuple."""
    keys = [(key,) if isinstance(key, str) else key for key in indexed]
    return Table(
        name,
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        *columns,
        *(Index(f"ix_{name}_{'_'.join(key)}", *key) for key in keys),
    )


users = _table(
    "users",
    Column("created_at", DateTime, nullable=False),
    Column("country", String(2), nullable=False),
    indexed=("created_at",),
)

sessions = _table(
    "sessions",
    Column("user_id", Id, ForeignKey("users.id"), nullable=True),  # NULL: an anonymous visitor
    Column("started_at", DateTime, nullable=False),
    Column("ended_at", DateTime, nullable=True),  # NULL while the session is still open
    Column("landing_page", String(200), nullable=False),
    Column("page_views", Integer, nullable=False),
    indexed=("started_at",),
)

orders = _table(
    "orders",
    # Nullable on purpose: an order without a customer is a data-integrity violation the pack reports.
    Column("customer_id", Id, nullable=True),
    Column("session_id", Id, nullable=True),  # the session the order was placed in (conversion)
    Column("status", String(20), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", Money, nullable=False),
    Column("created_at", DateTime, nullable=False),
    indexed=("created_at", "session_id", "customer_id"),
)

products = _table(
    "products",
    Column("sku", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("category", String(100), nullable=False),
)

order_items = _table(
    "order_items",
    Column("order_id", Id, nullable=False),
    Column("product", String(200), nullable=False),  # the product's SKU as sold (products.sku)
    Column("category", String(100), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("price", Money, nullable=False),  # unit price, the order's currency
    indexed=("order_id",),
)

payments = _table(
    "payments",
    Column("order_id", Id, nullable=True),  # NULL or dangling: a payment without an order (integrity check)
    Column("status", String(20), nullable=False),
    Column("failure_reason", String(40), nullable=True),  # one of FAILURE_REASONS when status = 'failed'
    Column("method", String(20), nullable=False),
    Column("amount", Money, nullable=False),
    Column("created_at", DateTime, nullable=False),
    indexed=("order_id", "created_at"),
)

refunds = _table(
    "refunds",
    Column("order_id", Id, nullable=False),
    Column("amount", Money, nullable=False),
    Column("kind", String(10), nullable=False),  # refund (money back) | return (goods sent back)
    Column("created_at", DateTime, nullable=False),
    indexed=("order_id", "created_at"),
)

events = _table(
    "events",
    Column("session_id", Id, nullable=False),
    Column("user_id", Id, nullable=True),  # NULL for an anonymous visitor
    Column("type", String(40), nullable=False),  # one of marketplace.FUNNEL_STEPS; other types are ignored by the pack
    Column("product_id", Id, nullable=True),  # products.id for product events; NULL for others
    Column("occurred_at", DateTime, nullable=False),
    # (session_id, type): the funnel reads a session's steps from the index alone.
    indexed=(("session_id", "type"), "occurred_at"),
)

TABLES = (users, sessions, products, orders, order_items, payments, refunds, events)
