"""Demo data for the marketplace KPI pack: history and live traffic in any SQLAlchemy database.

    python -m exporter.demo.generator --backfill 4w              # ./demo.db: four weeks of history
    python -m exporter.demo.generator --live                     # then keep writing traffic every second
    python -m exporter.demo.generator --url postgresql+psycopg://postgres@127.0.0.1/shop --backfill 1w --live

One simulation serves both modes: time advances in steps (a minute while backfilling, the `--tick`
while live) and each step draws sessions from a rate with daily and weekly seasonality, writes their
behaviour-flow events (product views, cart, checkout, payment) with a shop's drop-off, turns some into
orders with items and payment attempts, settles pending bank transfers hours later (the order becomes
paid, or is cancelled), and refunds some recent orders. Payment-failure bursts and
refund spikes start at random (on average every `--burst-every`) and last a few minutes. Rare data
errors (orders without a customer, payments without an order, double refunds, a negative price) keep
the pack's integrity checks honest. The same `--seed` and `--until` give the same rows on every database.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import itertools
import logging
import math
import operator
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

import pydantic
import sqlalchemy
import yaml
from sqlalchemy.engine import Connection, Engine

from exporter.config.types import Duration
from exporter.kpis.packs import marketplace_schema as schema

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///demo.db"
# Relative traffic per hour of the day (UTC): quiet nights, a lunch bump, an evening peak. Mean 1.
_HOURLY = (
    0.35, 0.25, 0.18, 0.15, 0.15, 0.2, 0.35, 0.6, 0.85, 1.0, 1.1, 1.2,
    1.3, 1.2, 1.15, 1.15, 1.2, 1.35, 1.55, 1.75, 1.8, 1.6, 1.1, 0.65,
)  # fmt: skip
HOURLY = tuple(h * 24 / sum(_HOURLY) for h in _HOURLY)
# Relative traffic per weekday, Monday first: people shop more at the weekend.
WEEKLY = (0.95, 0.93, 0.95, 1.0, 1.05, 1.3, 1.35)
LANDING_PAGES = ("/", "/search", "/deals", "/category", "/product", "/cart")
LANDING_WEIGHTS = tuple(itertools.accumulate((30, 20, 10, 15, 22, 3)))  # cumulative, for bisect
CATEGORIES = (
    "electronics", "fashion", "home", "garden", "toys", "books", "beauty", "sports",
    "grocery", "automotive", "music", "pets", "office", "health", "jewelry",
)  # fmt: skip
CATEGORY_WEIGHTS = tuple(itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(CATEGORIES))))
CATEGORY_PRICE = {c: 8 + 90 * (i % 5) / 4 for i, c in enumerate(CATEGORIES)}  # median unit price
PRODUCTS_PER_CATEGORY = 400  # the catalogue: products.id = category index * 400 + n, sku "<category>-<n>"
SKUS = tuple(tuple(f"{c}-{n:03d}" for n in range(1, PRODUCTS_PER_CATEGORY + 1)) for c in CATEGORIES)
PRODUCT_NOUNS = (
    "headphones", "jacket", "lamp", "hose", "puzzle", "novel", "serum", "racket",
    "coffee", "wiper", "vinyl", "leash", "stapler", "vitamins", "ring",
)  # fmt: skip
PRODUCT_ADJECTIVES = ("classic", "compact", "deluxe", "eco", "essential", "premium", "smart", "travel")
# Behaviour flow: of the sessions that did not bounce, those that view products, then of the viewers
# who do not buy, those who fill a cart, then of those, those who begin checkout without ordering.
VIEW_RATE = 0.85
CART_RATE = 0.36
CHECKOUT_RATE = 0.2
PENDING_SETTLED = 0.85  # pending bank transfers that arrive (the order becomes paid); the rest are cancelled
CURRENCY_WEIGHTS = (60, 25, 15)  # EUR, USD, GBP
METHOD_WEIGHTS = (70, 22, 8)  # card, paypal, bank_transfer
BASE_FAILURE = 0.06
BURST_FAILURE = 0.5
RETURN_RATE = 0.06  # share of paid orders refunded or returned later
REFUND_SPIKE_FACTOR = 10.0
RECENT_PAID = 5000  # paid orders remembered as candidates for refunds
ONE_SECOND = timedelta(seconds=1)
MAX_OUTAGE = 300.0  # live mode gives up after the database refused writes for this long (seconds)


@dataclass
class Rows:
    """Rows to insert, per table, in id order."""

    users: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    order_items: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    status_changes: list[dict[str, Any]] = field(default_factory=list)  # {order_id, new_status}, after inserts

    def count(self) -> int:
        return sum(len(getattr(self, table.name)) for table in schema.TABLES) + len(self.status_changes)


@dataclass(order=True, frozen=True)
class PendingOrder:
    """A bank transfer awaited: at `settles_at` the order becomes paid (or cancelled when not `arrives`)."""

    settles_at: datetime
    order_id: int
    session_id: int | None = field(compare=False)
    user_id: int | None = field(compare=False)
    amount: Decimal = field(compare=False)
    arrives: bool = field(compare=False)


@dataclass
class Simulation:
    """The generator's state: random source, next ids, recent paid orders, running incidents."""

    rng: random.Random
    sessions_per_day: float
    burst_every: float  # seconds, mean time between incidents of each kind
    next_id: dict[str, int]
    users: int  # user ids 1..users exist
    recent_paid: deque[tuple[int, Decimal, datetime]] = field(default_factory=lambda: deque(maxlen=RECENT_PAID))
    refunded: set[int] = field(default_factory=set)  # orders refunded once already (not picked again)
    pending: list[PendingOrder] = field(default_factory=list)  # a heap, the next to settle first
    failure_burst: tuple[datetime, datetime, str] | None = None  # start, end, dominant reason
    # Share of the sessions about to order whose checkout places the order (--control): 0 is a checkout
    # incident (sessions still browse, fill carts and begin checkout; no order, no payment).
    orders_factor: float = 1.0
    refund_spike: tuple[datetime, datetime] | None = None
    next_burst_at: datetime | None = None
    next_spike_at: datetime | None = None

    def new_id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def rate(self, at: datetime) -> float:
        """Expected sessions per second at `at`, with daily and weekly seasonality."""
        hour = at.hour + at.minute / 60
        low, high = HOURLY[int(hour) % 24], HOURLY[(int(hour) + 1) % 24]
        daily = low + (high - low) * (hour - int(hour))
        return self.sessions_per_day / 86400 * daily * WEEKLY[at.weekday()]

    def poisson(self, mean: float) -> int:
        if mean <= 0:
            return 0
        if mean > 40:
            return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        limit, count, product = math.exp(-mean), 0, self.rng.random()
        while product > limit:
            count += 1
            product *= self.rng.random()
        return count

    def _incidents(self, start: datetime, end: datetime) -> None:
        """Start and end failure bursts and refund spikes (exponential gaps, 3-15 minutes long)."""
        if self.next_burst_at is None or self.next_spike_at is None:
            self.next_burst_at = start + timedelta(seconds=self.rng.expovariate(1 / self.burst_every))
            self.next_spike_at = start + timedelta(seconds=self.rng.expovariate(1 / self.burst_every))
        if self.failure_burst and self.failure_burst[1] <= start:
            self.failure_burst = None
        if self.refund_spike and self.refund_spike[1] <= start:
            self.refund_spike = None
        if self.next_burst_at < end and self.failure_burst is None:
            reason = self.rng.choice(("processing_error", "fraud_suspected", "authentication_failed"))
            length = timedelta(minutes=self.rng.uniform(3, 15))
            self.failure_burst = (self.next_burst_at, self.next_burst_at + length, reason)
            self.next_burst_at += length + timedelta(seconds=self.rng.expovariate(1 / self.burst_every))
        if self.next_spike_at < end and self.refund_spike is None:
            length = timedelta(minutes=self.rng.uniform(3, 15))
            self.refund_spike = (self.next_spike_at, self.next_spike_at + length)
            self.next_spike_at += length + timedelta(seconds=self.rng.expovariate(1 / self.burst_every))

    def step(
        self,
        start: datetime,
        end: datetime,
        rows: Rows,
        *,
        sessions_end_in_window: bool = False,
        horizon: datetime | None = None,
    ) -> None:
        """Add the traffic of [start, end) to `rows`; nothing is dated at or after `horizon` (default `end`).

        Backfilling, sessions start in the window (and are cut short at the horizon, the end of the
        history); live, they end in it, so that a session row is written once it is complete.
        """
        horizon = horizon or end
        self._incidents(start, end)
        span = (end - start).total_seconds()
        mid = start + (end - start) / 2
        times = sorted(self.rng.uniform(0, span) for _ in range(self.poisson(self.rate(mid) * span)))
        for offset in times:
            self._session(start + timedelta(seconds=offset), horizon, rows, sessions_end_in_window)
        self._settle(start, end, rows)
        self._refunds(start, end, span, rows)

    def _settle(self, start: datetime, end: datetime, rows: Rows) -> None:
        """The bank transfers due before `end` arrive (a successful payment, the order paid) or never do
        (the order cancelled). A change of status: the pack's daily gauge moves the order."""
        while self.pending and self.pending[0].settles_at < end:
            due = heapq.heappop(self.pending)
            at = max(due.settles_at, start).replace(microsecond=0)
            if not due.arrives:
                rows.status_changes.append({"order_id": due.order_id, "new_status": "cancelled"})
                continue
            rows.status_changes.append({"order_id": due.order_id, "new_status": "paid"})
            self._payment(rows, due.order_id, "succeeded", due.amount, at, method="bank_transfer", reason=None)
            if due.session_id is not None:
                self._event(rows, due.session_id, due.user_id, "paid", at)
            self.recent_paid.append((due.order_id, due.amount, at))

    def _event(
        self,
        rows: Rows,
        session_id: int,
        user_id: int | None,
        type_: str,
        at: datetime,
        *,
        product_id: int | None = None,
    ) -> None:
        rows.events.append(
            {
                "id": self.new_id("events"),
                "session_id": session_id,
                "user_id": user_id,
                "type": type_,
                "product_id": product_id,
                "occurred_at": at,  # whole seconds already
            }
        )

    def _product(self, category: int | None = None) -> tuple[int, str]:
        """A product of the catalogue (of the `category` index, or any): popular ones far more often. (id, sku)"""
        rng = self.rng
        if category is None:
            category = bisect.bisect(CATEGORY_WEIGHTS, rng.random() * CATEGORY_WEIGHTS[-1])
        n = int(PRODUCTS_PER_CATEGORY * rng.random() ** 3)
        return category * PRODUCTS_PER_CATEGORY + n + 1, SKUS[category][n]

    def _session(self, at: datetime, horizon: datetime, rows: Rows, anchored_at_end: bool) -> None:
        rng = self.rng
        bounced = rng.random() < 0.42
        page_views = 1 if bounced else 2 + min(int(rng.expovariate(1 / 4)), 60)
        seconds = rng.uniform(3, 40) if bounced else min(rng.lognormvariate(math.log(60 * page_views), 0.5), 7200)
        duration = timedelta(seconds=round(seconds))
        started = (at - duration if anchored_at_end else at).replace(microsecond=0)
        ended = started + duration
        if ended >= horizon:  # cut short: nothing is dated at or after the horizon
            duration = max(horizon - ONE_SECOND - started, timedelta(0))
            ended = started + duration
        user_id: int | None = None
        if rng.random() < 0.72:
            user_id = 1 + int(self.users * rng.random() ** 2.5)  # a few heavy users, a long tail
        elif rng.random() < 0.03:  # an anonymous visitor signs up
            self.users += 1
            user_id = self.users
            rows.users.append({"id": self.users, "created_at": started, "country": _country(rng)})
        session_id = self.new_id("sessions")
        # rng.choices(cum_weights=...) without its overhead (once per session): the same draw.
        landing_page = LANDING_PAGES[bisect.bisect(LANDING_WEIGHTS, rng.random() * LANDING_WEIGHTS[-1])]
        rows.sessions.append(
            {
                "id": session_id,
                "user_id": user_id,
                "started_at": started,
                "ended_at": ended,
                "landing_page": landing_page,
                "page_views": page_views,
            }
        )
        buy_chance = 0.0 if bounced else 0.02 + 0.012 * min(page_views, 10) + (0.03 if user_id else 0.0)
        # One draw whatever the orders factor, so that a seed gives the same traffic with the knob untouched.
        draw = rng.random()
        buys = draw < buy_chance * self.orders_factor
        stuck = not buys and draw < buy_chance  # would have ordered: gets to checkout, which places no order
        self._flow(session_id, user_id, started, duration, rows, buys=buys or stuck, bounced=bounced,
                   landing=landing_page, orders=not stuck)  # fmt: skip

    def _flow(
        self,
        session_id: int,
        user_id: int | None,
        started: datetime,
        duration: timedelta,
        rows: Rows,
        *,
        buys: bool,
        bounced: bool,
        landing: str,
        orders: bool = True,
    ) -> None:
        """The session's behaviour-flow events, and its order when it `buys` (after viewing, carting and
        beginning checkout: a session that ordered has every step before it), unless checkout places no
        `orders` (an incident: the steps up to checkout happen, the order and its payment do not)."""
        rng = self.rng
        if bounced:
            views = 1 if landing == "/product" else 0
        else:
            views = (2 if rng.random() < 0.15 else 1) if buys or rng.random() < VIEW_RATE else 0
        if not views:  # nothing viewed (bounced elsewhere, or only browsed categories): no step reached
            return
        carts = buys or (views > 0 and rng.random() < CART_RATE)
        checks_out = buys or (carts and rng.random() < CHECKOUT_RATE)
        seconds = int(duration.total_seconds())  # events on whole seconds, as every time the generator writes

        def at(fraction: float) -> datetime:
            return started + timedelta(seconds=int(seconds * fraction))

        viewed = [self._product() for _ in range(views)]
        for n, (product_id, _) in enumerate(viewed):
            self._event(rows, session_id, user_id, "product_viewed", at(0.5 * n / views), product_id=product_id)
        order = None
        if buys and orders:
            order = self._order(session_id, user_id, at(0.8), started + duration, rows)
        if carts:
            product_id = order[0] if order is not None else viewed[-1][0]
            self._event(rows, session_id, user_id, "added_to_cart", at(0.6), product_id=product_id)
        if checks_out:
            self._event(rows, session_id, user_id, "checkout_started", at(0.75))
        if order is not None and order[1] is not None:
            self._event(rows, session_id, user_id, "paid", order[1])

    def _order(
        self, session_id: int, user_id: int | None, at: datetime, horizon: datetime, rows: Rows
    ) -> tuple[int, datetime | None]:
        """An order with its items and payment attempts: (its first product's id, when it was paid or None)."""
        rng = self.rng
        at = at.replace(microsecond=0)
        order_id = self.new_id("orders")
        currency = rng.choices(schema.CURRENCIES, CURRENCY_WEIGHTS)[0]
        amount = Decimal(0)
        first_product = 0
        for _ in range(1 + min(int(rng.expovariate(1 / 0.8)), 6)):
            index = bisect.bisect(CATEGORY_WEIGHTS, rng.random() * CATEGORY_WEIGHTS[-1])
            category = CATEGORIES[index]
            product_id, sku = self._product(index)
            first_product = first_product or product_id
            price = Decimal(round(rng.lognormvariate(math.log(CATEGORY_PRICE[category]), 0.6), 2)).quantize(
                Decimal("0.01")
            )
            if rng.random() < 1 / 20000:
                price = -price  # a data error: the integrity check counts negative amounts
            quantity = 1 + min(int(rng.expovariate(1 / 0.4)), 4)
            amount += quantity * price
            rows.order_items.append(
                {
                    "id": self.new_id("order_items"),
                    "order_id": order_id,
                    "product": sku,
                    "category": category,
                    "quantity": quantity,
                    "price": price,
                }
            )
        method = rng.choices(schema.PAYMENT_METHODS, METHOD_WEIGHTS)[0]
        status, paid_at = "pending", None
        if method == "bank_transfer" and rng.random() < 0.4:  # the money arrives hours later, or never
            settles_at = at + timedelta(hours=rng.uniform(1, 30))
            arrives = rng.random() < PENDING_SETTLED
            heapq.heappush(self.pending, PendingOrder(settles_at, order_id, session_id, user_id, amount, arrives))
        else:
            paid_at = self._payments(order_id, method, amount, at, horizon=horizon, rows=rows)
            status = "payment_failed" if paid_at is None else "paid"
        if status == "paid" and rng.random() < 0.03:
            status = "cancelled"
        if user_id is None and rng.random() > 1 / 500:  # guest checkout links the order to a customer record
            user_id = 1 + int(self.users * rng.random())
        rows.orders.append(
            {
                "id": order_id,
                "customer_id": user_id,
                "session_id": session_id,
                "status": status,
                "currency": currency,
                "amount": amount,
                "created_at": at,
            }
        )
        if status == "paid":
            self.recent_paid.append((order_id, amount, at))
        return first_product, paid_at

    def _payments(
        self, order_id: int, method: str, amount: Decimal, at: datetime, *, horizon: datetime, rows: Rows
    ) -> datetime | None:
        """Up to three attempts; returns when one succeeded, None when the customer gave up."""
        rng = self.rng
        attempt_at = at
        for _ in range(3):
            attempt_at = max(
                min(attempt_at + timedelta(seconds=rng.randint(2, 40)), horizon - timedelta(seconds=1)), at
            )
            burst = self.failure_burst
            in_burst = burst is not None and burst[0] <= attempt_at < burst[1]
            failed = rng.random() < (BURST_FAILURE if in_burst else BASE_FAILURE)
            reason = None
            if failed:
                reason = burst[2] if burst is not None and in_burst else rng.choice(schema.FAILURE_REASONS)
            orphan = rng.random() < 1 / 5000  # a provider webhook that matched no order
            status = "failed" if failed else "succeeded"
            self._payment(rows, None if orphan else order_id, status, amount, attempt_at, method=method, reason=reason)
            if not failed:
                return attempt_at.replace(microsecond=0)
            if rng.random() > 0.6:  # the customer gives up
                break
        return None

    def _payment(
        self,
        rows: Rows,
        order_id: int | None,
        status: str,
        amount: Decimal,
        at: datetime,
        *,
        method: str,
        reason: str | None,
    ) -> None:
        rows.payments.append(
            {
                "id": self.new_id("payments"),
                "order_id": order_id,
                "status": status,
                "failure_reason": reason,
                "method": method,
                "amount": amount,
                "created_at": at.replace(microsecond=0),
            }
        )

    def _refunds(self, start: datetime, end: datetime, span: float, rows: Rows) -> None:
        """Refund or return recent paid orders: at RETURN_RATE of the order rate, far more in a spike."""
        if not self.recent_paid:
            return
        spike = self.refund_spike
        factor = REFUND_SPIKE_FACTOR if spike is not None and spike[0] < end and start < spike[1] else 1.0
        orders_per_second = self.rate(start) * 0.045
        for _ in range(self.poisson(orders_per_second * RETURN_RATE * factor * span)):
            order_id, amount, ordered_at = self.rng.choice(self.recent_paid)
            at = start + timedelta(seconds=self.rng.uniform(0, span))
            if at <= ordered_at or order_id in self.refunded:
                continue
            self.refunded.add(order_id)
            kind = self.rng.choices(schema.REFUND_KINDS, (40, 60))[0]
            refund = amount if kind == "refund" else (amount * Decimal("0.5")).quantize(Decimal("0.01"))
            copies = 2 if self.rng.random() < 1 / 300 else 1  # a double refund: the integrity check sees it
            for _ in range(copies):
                rows.refunds.append(
                    {
                        "id": self.new_id("refunds"),
                        "order_id": order_id,
                        "amount": refund,
                        "kind": kind,
                        "created_at": at.replace(microsecond=0),
                    }
                )


def _country(rng: random.Random) -> str:
    return rng.choices(("DE", "FR", "GB", "US", "ES", "IT", "NL", "PL"), (25, 15, 15, 20, 8, 8, 5, 4))[0]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _parse_duration(value: str) -> float:
    try:
        return float(pydantic.TypeAdapter(Duration).validate_python(value))
    except pydantic.ValidationError as err:
        raise argparse.ArgumentTypeError(str(err.errors()[0]["msg"]).removeprefix("Value error, ")) from None


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def prepare(engine: Engine, rng: random.Random, sessions_per_day: float, burst_every: float, start: datetime) -> (
    Simulation
):  # fmt: skip
    """Create the schema if needed; continue the ids (and the user base) of what is already there."""
    schema.metadata.create_all(engine)
    with engine.connect() as conn:
        next_id = {
            table.name: int(conn.execute(sqlalchemy.select(sqlalchemy.func.max(table.c.id))).scalar() or 0) + 1
            for table in schema.TABLES
        }
        recent = conn.execute(
            sqlalchemy.select(schema.orders.c.id, schema.orders.c.amount, schema.orders.c.created_at)
            .where(schema.orders.c.status == "paid")
            .order_by(schema.orders.c.id.desc())
            .limit(RECENT_PAID)
        ).all()
        oldest = min((int(r.id) for r in recent), default=0)
        refunded = conn.execute(
            sqlalchemy.select(schema.refunds.c.order_id).where(schema.refunds.c.order_id >= oldest).distinct()
        ).scalars()
        simulation = Simulation(rng, sessions_per_day, burst_every, next_id, next_id["users"] - 1)
        simulation.refunded.update(int(order_id) for order_id in refunded)
        # Bank transfers still awaited (those of the last two days; older ones are left pending).
        o, s = schema.orders.c, schema.sessions.c
        awaited = conn.execute(
            sqlalchemy.select(o.id, o.session_id, s.user_id, o.amount, o.created_at)
            .select_from(schema.orders.outerjoin(schema.sessions, s.id == o.session_id))
            .where(o.status == "pending", o.created_at >= start - timedelta(days=2))
            .order_by(o.id)
        ).all()
    simulation.recent_paid.extend((int(r.id), Decimal(r.amount), r.created_at) for r in reversed(recent))
    for r in awaited:
        settles_at = r.created_at + timedelta(hours=rng.uniform(1, 30))
        arrives = rng.random() < PENDING_SETTLED
        heapq.heappush(
            simulation.pending, PendingOrder(settles_at, int(r.id), r.session_id, r.user_id, Decimal(r.amount), arrives)
        )
    base = Rows()
    if next_id["products"] == 1:  # a fresh database: the catalogue
        base.products = _catalogue(rng)
    if simulation.users == 0:  # a fresh database: the customers who existed before the history starts
        for _ in range(max(10, int(sessions_per_day))):
            user_id = simulation.new_id("users")
            joined = start - timedelta(days=rng.uniform(1, 730))
            base.users.append({"id": user_id, "created_at": joined.replace(microsecond=0), "country": _country(rng)})
        simulation.users = len(base.users)
    with engine.begin() as conn:
        write(conn, base)
    return simulation


def _catalogue(rng: random.Random) -> list[dict[str, Any]]:
    """PRODUCTS_PER_CATEGORY products in each category; ids and SKUs as Simulation._product draws them."""
    products = []
    for index, category in enumerate(CATEGORIES):
        noun = PRODUCT_NOUNS[index]
        for n in range(1, PRODUCTS_PER_CATEGORY + 1):
            name = f"{rng.choice(PRODUCT_ADJECTIVES).capitalize()} {noun} {n}"
            products.append(
                {
                    "id": index * PRODUCTS_PER_CATEGORY + n,
                    "sku": f"{category}-{n:03d}",
                    "name": name,
                    "category": category,
                }
            )
    return products


def write(conn: Connection, rows: Rows) -> None:
    for table in schema.TABLES:
        batch = getattr(rows, table.name)
        if not batch:
            continue
        if conn.dialect.name == "sqlite":
            _write_sqlite(conn, table, batch)
        else:
            conn.execute(table.insert(), batch)
    if rows.status_changes:  # after the inserts: the order may be in this batch
        order = schema.orders
        change = order.update().where(order.c.id == sqlalchemy.bindparam("order_id"))
        conn.execute(change.values(status=sqlalchemy.bindparam("new_status")), rows.status_changes)


def _sqlite_column(column: sqlalchemy.Column[Any], batch: list[dict[str, Any]]) -> list[Any]:
    """A column's values as SQLAlchemy's DateTime and Numeric store them on SQLite, without its per-row
    processing (half the backfill's time otherwise); converted column by column, the fastest in Python."""
    values = list(map(operator.itemgetter(column.name), batch))
    if isinstance(column.type, sqlalchemy.DateTime):
        return [None if v is None else v.isoformat(" ", "microseconds") for v in values]
    if isinstance(column.type, sqlalchemy.Numeric):
        return [None if v is None else float(v) for v in values]
    return values


def _write_sqlite(conn: Connection, table: sqlalchemy.Table, batch: list[dict[str, Any]]) -> None:
    columns = list(table.columns)
    names = ", ".join(column.name for column in columns)
    statement = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})"
    conn.exec_driver_sql(statement, list(zip(*(_sqlite_column(column, batch) for column in columns), strict=True)))


def _sync_sequences(engine: Engine) -> None:
    """PostgreSQL: explicit ids do not move the serial sequences; move them, so other writers can insert."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for table in schema.TABLES:
            conn.execute(
                sqlalchemy.text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table.name}), false)"
                )
            )


def backfill(engine: Engine, simulation: Simulation, start: datetime, end: datetime) -> int:
    """Simulate [start, end) minute by minute, one transaction per simulated day; returns rows written."""
    written = 0
    step = timedelta(minutes=1)
    at = start
    while at < end:
        rows = Rows()
        day_end = min(at + timedelta(days=1), end)
        while at < day_end:
            simulation.step(at, min(at + step, day_end), rows, horizon=end)
            at += step
        with engine.begin() as conn:
            write(conn, rows)
        written += rows.count()
    _sync_sequences(engine)
    return written


class Control:
    """The live knobs, re-read from `--control FILE` (YAML or JSON) before every tick, e.g.

        orders_factor: 0     # checkout places no order (nor payment); sessions and browsing go on
        orders_factor: 0.5   # half the orders fail to be placed
        orders_factor: 1     # normal (also: no file, or no such key; an empty file changes nothing)

    Each change is logged ("control: orders_factor=0 ..."): the moment it takes effect, for a demo user
    and for a test. A file that does not parse is logged once and changes nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_error: str | None = None

    def read(self) -> float | None:
        """The orders factor the file asks for (1 without a file), or None when it is not valid."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return 1.0
        except OSError as err:
            self._complain(f"cannot read it: {err.strerror}")
            return None
        if not text.strip():  # being written (`echo ... > FILE` truncates first): wait for its content
            return None
        try:
            settings = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            self._complain(f"not YAML or JSON: {str(err).splitlines()[0]}")
            return None
        if not isinstance(settings, dict) or set(settings) - {"orders_factor"}:
            self._complain("expected a mapping with the one key orders_factor")
            return None
        factor = settings.get("orders_factor", 1.0)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 <= factor <= 1:
            self._complain(f"orders_factor must be a number from 0 to 1, not {factor!r}")
            return None
        self.last_error = None
        return float(factor)

    def _complain(self, error: str) -> None:
        if error != self.last_error:  # once, not at every tick
            log.warning("control: ignoring %s: %s", self.path, error)
            self.last_error = error

    def apply(self, simulation: Simulation) -> None:
        factor = self.read()
        if factor is not None and factor != simulation.orders_factor:
            simulation.orders_factor = factor
            log.info("control: orders_factor=%g from %s (checkout places %g%% of orders)", factor, self.path,
                     100 * factor)  # fmt: skip


class _Stop:
    requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def live(
    engine: Engine, simulation: Simulation, tick: float, duration: float | None, control: Control | None = None
) -> int:
    """Write the traffic of each `tick` as it happens, until SIGTERM/SIGINT or `duration`; returns rows.
    `control` is read before each tick.

    A failed write (database locked by a long reader, server restarting) is logged and retried with the
    next tick's rows, so no simulated order loses its items or payments.
    """
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    written = 0
    last = utc_now()
    started = time.monotonic()
    pending = Rows()
    failing_since: float | None = None
    while not stop.requested and (duration is None or time.monotonic() - started < duration):
        if control is not None:
            control.apply(simulation)
        time.sleep(tick)
        now = utc_now()
        simulation.step(last, now, pending, sessions_end_in_window=True)
        last = now
        try:
            with engine.begin() as conn:
                write(conn, pending)
            if pending.count():
                _sync_sequences(engine)
        except sqlalchemy.exc.OperationalError as err:
            if failing_since is None:
                failing_since = time.monotonic()
                log.warning("write failed, retrying every tick: %s", str(err).splitlines()[0])
            if time.monotonic() - failing_since > MAX_OUTAGE:
                raise
            continue
        if failing_since is not None:
            log.info("writing again after %.0fs", time.monotonic() - failing_since)
            failing_since = None
        written += pending.count()
        pending = Rows()
    return written


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m exporter.demo.generator",
        description="Create the marketplace schema and write demo traffic (history and/or live).",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"SQLAlchemy database URL (default {DEFAULT_URL})")
    parser.add_argument("--backfill", type=_parse_duration, metavar="DURATION", help="write this much history, e.g. 4w")
    parser.add_argument("--until", type=_parse_time, help="end of the history, ISO 8601 (default: now, UTC)")
    parser.add_argument("--live", action="store_true", help="then keep writing traffic as it happens")
    parser.add_argument("--live-for", type=_parse_duration, metavar="DURATION", help="stop live mode after this")
    parser.add_argument("--tick", type=_parse_duration, default=1.0, help="live mode: write every (default 1s)")
    parser.add_argument(
        "--control",
        type=Path,
        metavar="FILE",
        help="live mode: re-read before every tick, e.g. `orders_factor: 0` makes checkout place no orders",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--sessions-per-day", type=float, default=20000, help="average traffic (default 20000)")
    parser.add_argument(
        "--burst-every",
        type=_parse_duration,
        default=6 * 3600.0,
        metavar="DURATION",
        help="mean time between payment-failure bursts, and between refund spikes (default 6h)",
    )
    args = parser.parse_args(argv)
    if args.backfill is None and not args.live:
        parser.error("nothing to do: give --backfill DURATION, --live, or both")
    if args.tick <= 0 or args.sessions_per_day <= 0 or args.burst_every <= 0:
        parser.error("--tick, --sessions-per-day and --burst-every must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s generator: %(message)s", stream=sys.stderr)
    engine = sqlalchemy.create_engine(args.url)
    safe_url = engine.url.render_as_string(hide_password=True)
    try:
        end = args.until or utc_now()
        start = end - timedelta(seconds=args.backfill or 0)
        simulation = prepare(engine, random.Random(args.seed), args.sessions_per_day, args.burst_every, start)
        if args.backfill:
            began = time.monotonic()
            rows = backfill(engine, simulation, start, end)
            log.info("backfilled %s rows (%s to %s) into %s in %.1fs", rows, start, end, safe_url,
                     time.monotonic() - began)  # fmt: skip
        if args.live:
            log.info("writing live traffic into %s every %ss (Ctrl-C stops)", safe_url, args.tick)
            control = Control(args.control) if args.control else None
            rows = live(engine, simulation, args.tick, args.live_for, control)
            log.info("live traffic stopped after %s rows", rows)
    except sqlalchemy.exc.SQLAlchemyError as err:
        log.error("database error on %s: %s", safe_url, str(err).splitlines()[0])
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
