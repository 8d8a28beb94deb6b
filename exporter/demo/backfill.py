"""The demo's history as Prometheus would have scraped it: OpenMetrics text for `promtool tsdb
create-blocks-from openmetrics` (docs/demo-history.md has the recipe).

    python -m exporter.demo.backfill --db demo.db --out history.om [--start ISO] [--end ISO] [--step 1m]

Prometheus only has what it scraped since it started, so rules and panels comparing with last week
(`offset 1w`) have nothing to compare with on a fresh demo. This writes, at every `--step` of the
database's history, the marketplace pack's series as Pulse would have exported them then: the pack's
metric names, types, HELP and label names (read from the pack itself), plus the `job` and `instance`
labels a scrape adds.

"As Pulse would have exported them then" means: over the rows the database held at that instant, with
the pack's definitions. A row is there once the generator writes it: a session when it has ended (live
mode writes a session with its events, order, items and checkout payments then), a later payment (a
bank transfer settling) or refund at its own time. Each value is computed in one pass over the rows,
in Python: the pack's SQL at every minute of four weeks would take hours. tests/test_demo_backfill.py
runs the pack's own SQL over the database as it was at chosen instants (the rows of then, the clock
pinned) and checks that every series here matches it, so this cannot drift from the pack unnoticed.

Left out: business_product_orders and business_product_revenue (the top products change minute by
minute: a ranking of thousands of products at every step costs more than the rest together, and their
panels show the last 24 hours, which the live scrape has), business_integrity_violations and
business_table_newest_row_timestamp_seconds (about the live database: a history of them compares
with nothing). The order statuses are today's (the database keeps no history of them): the history
of business_daily_orders, business_average_order_value and business_refund_rate_ratio sees a bank
transfer that settled later as paid from the start.

Counters: a cursor counter starts at every row already in the database (its cursor starts at 0), so
Pulse's value at any instant is the number (or amount) of the rows written by then, whenever Pulse
started; the history's counters are the same, so they continue into the live values. Amounts are
summed exactly, in cents, and written half a cent below the exact sum: Pulse adds floats, whose
rounding could leave its first live value a hair below the history's last, which rate() would read
as a counter reset (an increase of the whole total). The history ends `--end` (default two minutes
before now): Pulse's value lags the database by up to its query interval, and the history must end
before Prometheus's first scrape (its head block).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from exporter.kpis.packs import marketplace

log = logging.getLogger(__name__)

DAY = marketplace.DAY
HOUR = marketplace.HOUR
# Half a cent below the exact sum: see "Counters" above.
MONEY_MARGIN = 0.005
END_MARGIN = 120  # seconds: the default end, before now
DEFAULT_JOB = "pulse"
DEFAULT_INSTANCE = "127.0.0.1:10135"
# The pack's metrics this leaves out (why: the module's docstring).
LEFT_OUT = (
    "business_product_orders",
    "business_product_revenue",
    "business_integrity_violations",
    "business_table_newest_row_timestamp_seconds",
)

Labels = tuple[tuple[str, str], ...]
Value = float | int | None


@dataclass(frozen=True)
class Grid:
    """The instants written: `start + i * step` for i in 0..count-1 (Unix seconds)."""

    start: int
    step: int
    count: int

    def instant(self, index: int) -> int:
        return self.start + index * self.step


@dataclass(frozen=True)
class Timeline:
    """Where changes are added up: the grid's instants, extended back to `origin` (the oldest row, so
    that counters count what came before the grid) and on by `reach` (so that a window ending after the
    grid needs no bounds check). Index i is the instant `origin + i * step`."""

    grid: Grid
    origin: int
    reach: int  # seconds

    @property
    def length(self) -> int:
        return (self.grid.start - self.origin) // self.grid.step + self.grid.count + self.reach // self.grid.step + 2

    def seen(self, at: int) -> int:
        """The first index at or after `at`: a row written at `at` counts from there on."""
        return -((self.origin - at) // self.grid.step)

    def after(self, at: int) -> int:
        """The first index after `at`: a window that holds a row while `now - width <= at` ends there."""
        return (at - self.origin) // self.grid.step + 1


class Deltas:
    """Changes at indexes of a timeline, added up into the value at each instant of its grid."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.changes = [0] * timeline.length

    def add_from(self, at: int, amount: int = 1) -> None:
        """`amount` added from the instant `at` on (a counter)."""
        self.changes[self.timeline.seen(at)] += amount

    def add_during(self, seen: int, until: int, amount: int = 1) -> None:
        """`amount` counted from `seen` (the row is written) to `until` (its time plus the window)."""
        first, end = self.timeline.seen(seen), self.timeline.after(until)
        if first < end:
            self.changes[first] += amount
            self.changes[end] -= amount

    def values(self) -> list[int]:
        grid = self.timeline.grid
        offset = (grid.start - self.timeline.origin) // grid.step
        return list(itertools.accumulate(self.changes))[offset : offset + grid.count]


def add_distinct(deltas: Deltas, ranges: list[tuple[int, int]]) -> None:
    """Count one key (a user, an order) once at each index one of its `ranges` [first, end) covers."""
    changes = deltas.changes
    ranges.sort()
    current_start, current_end = -1, -1
    for start, end in ranges:
        if start >= end:
            continue
        if start > current_end:
            if current_start < current_end:
                changes[current_start] += 1
                changes[current_end] -= 1
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_start < current_end:
        changes[current_start] += 1
        changes[current_end] -= 1


@dataclass
class Family:
    """One metric family of the pack, with each series' value at each instant (None: not exported)."""

    name: str
    type: str
    help: str
    label_names: tuple[str, ...]
    series: dict[Labels, list[Value]] = field(default_factory=dict)

    def add(self, values: list[Value], **labels: str) -> None:
        assert tuple(labels) == self.label_names, (self.name, tuple(labels), self.label_names)
        self.series[tuple(labels.items())] = values


# ------------------------------------------------------------------------------------------ the rows


@dataclass
class History:
    """The rows the computation needs, times as Unix seconds; `seen` is when the row was written."""

    sessions: list[tuple[int, int | None, int, int, bool, int]]  # id, user, started, seen, ended?, page views
    first_steps: dict[int, dict[str, int]]  # session -> event type -> first time (written by then)
    orders: list[tuple[int, int | None, str, str, int, int, int]]  # id, session, status, currency, cents, at, seen
    payments: list[tuple[str, str, str | None, str, int, int]]  # status, method, reason, currency, cents, seen
    refunds: list[tuple[int, str, str, int, int, int]]  # order, kind, currency, cents, at, seen
    order_categories: list[tuple[str, int, int]]  # category, order created at, order seen

    def until(self, last: int) -> History:
        """The rows written by `last`."""
        return History(
            [s for s in self.sessions if s[3] <= last],
            self.first_steps,  # the funnel stops at `last`
            [o for o in self.orders if o[6] <= last],
            [p for p in self.payments if p[5] <= last],
            [r for r in self.refunds if r[5] <= last],
            [c for c in self.order_categories if c[2] <= last],
        )


def _seconds(column: str) -> str:
    """A naive-UTC datetime column as Unix seconds (the generator writes whole seconds)."""
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def _cents(column: str) -> str:
    return f"CAST(ROUND({column} * 100) AS INTEGER)"


def read_history(db: sqlite3.Connection) -> History:
    session_seen_sql = _seconds("COALESCE(s.ended_at, s.started_at)")
    sessions = [
        (int(r[0]), r[1], int(r[2]), int(r[3]), bool(r[4]), int(r[5]))
        for r in db.execute(
            f"SELECT s.id, s.user_id, {_seconds('s.started_at')}, {session_seen_sql}, s.ended_at IS NOT NULL, "
            "s.page_views FROM sessions s ORDER BY s.id"
        )
    ]
    session_seen = {s[0]: s[3] for s in sessions}
    first_steps: dict[int, dict[str, int]] = defaultdict(dict)
    for session_id, type_, first in db.execute(
        f"SELECT session_id, type, MIN({_seconds('occurred_at')}) FROM events GROUP BY session_id, type"
    ):
        first_steps[int(session_id)][type_] = int(first)
    orders = []
    for order_id, session_id, status, currency, cents, at in db.execute(
        f"SELECT id, session_id, status, currency, {_cents('amount')}, {_seconds('created_at')} FROM orders ORDER BY id"
    ):
        seen = max(int(at), session_seen.get(session_id, int(at)) if session_id is not None else int(at))
        orders.append((int(order_id), session_id, status, currency, int(cents), int(at), seen))
    order_seen = {o[0]: (o[6], o[3]) for o in orders}
    payments = []
    for order_id, status, method, reason, cents, at in db.execute(
        f"SELECT order_id, status, method, failure_reason, {_cents('amount')}, {_seconds('created_at')} FROM payments"
    ):
        seen, currency = (
            order_seen.get(order_id, (int(at), "unknown")) if order_id is not None else (int(at), "unknown")
        )
        payments.append((status, method, reason, currency, int(cents), max(int(at), seen)))
    refunds = []
    for order_id, kind, cents, at in db.execute(
        f"SELECT order_id, kind, {_cents('amount')}, {_seconds('created_at')} FROM refunds"
    ):
        seen, currency = order_seen.get(order_id, (int(at), "unknown"))
        refunds.append((int(order_id), kind, currency, int(cents), int(at), max(int(at), seen)))
    order_times = {o[0]: (o[5], o[6]) for o in orders}
    order_categories = []
    for order_id, category in db.execute("SELECT DISTINCT order_id, category FROM order_items"):
        if order_id in order_times:
            at, seen = order_times[order_id]
            order_categories.append((category, at, seen))
    return History(sessions, dict(first_steps), orders, payments, refunds, order_categories)


def history_span(db: sqlite3.Connection) -> tuple[int, int] | None:
    """The first session's start and the last row's time (Unix seconds), or None for an empty database."""
    first, last = db.execute(
        f"SELECT MIN({_seconds('started_at')}), MAX({_seconds('COALESCE(ended_at, started_at)')}) FROM sessions"
    ).fetchone()
    return None if first is None else (int(first), int(last))


# -------------------------------------------------------------------------------------- the series


def _pack_families() -> dict[str, Family]:
    """Every metric of the pack (name, type, help, labels) as the pack declares it."""
    families = {}
    for query in marketplace.queries("demo", "sqlite"):
        for metric in query["metrics"]:
            families[metric["name"]] = Family(metric["name"], metric["type"], metric["help"], tuple(metric["labels"]))
    return families


def _ratio(numerators: list[int], denominators: list[int], scale: float = 1.0) -> list[Value]:
    return [None if d <= 0 else n / d / scale for n, d in zip(numerators, denominators, strict=True)]


def _present(values: list[int], counts: list[int]) -> list[Value]:
    """Values where the group has rows (a GROUP BY returns no row for an empty group)."""
    return [v if c > 0 else None for v, c in zip(values, counts, strict=True)]


def _money(cents: list[int], rows: list[int]) -> list[Value]:
    return [c / 100 - MONEY_MARGIN if n > 0 else None for c, n in zip(cents, rows, strict=True)]


def compute(history: History, grid: Grid, top_n: int = marketplace.TOP_N) -> list[Family]:
    """The pack's series (but LEFT_OUT) at each instant of `grid`, in the pack's order."""
    families = _pack_families()
    out: dict[str, Family] = {}

    def family(name: str) -> Family:
        out[name] = families[name]
        return out[name]

    last = grid.instant(grid.count - 1)
    history = history.until(last)
    earliest = min([grid.start, *(s[2] for s in history.sessions[:1]), *(o[5] for o in history.orders[:1])])
    origin = grid.start - -((earliest - grid.start) // grid.step) * grid.step
    timeline = Timeline(grid, origin, 30 * DAY + grid.step)
    _active_users(history, timeline, family)
    _sessions(history, timeline, family)
    _orders(history, timeline, family, top_n)
    _payments_and_refunds(history, timeline, family)
    _funnel(history, timeline, family)
    missing = set(families) - set(out) - set(LEFT_OUT)
    assert not missing, f"pack metrics neither computed nor left out: {sorted(missing)}"
    return [out[name] for name in families if name in out]


def _active_users(history: History, timeline: Timeline, family: Any) -> None:
    origin, step = timeline.origin, timeline.grid.step
    ranges: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for _, user, started, seen, _, _ in history.sessions:
        if user is not None:
            # (first index seen, first index after the start): a window of width w ends w/step later.
            ranges[user].append((-((origin - seen) // step), (started - origin) // step + 1))
    values = []
    for width in (DAY, 7 * DAY, 30 * DAY):
        deltas = Deltas(timeline)
        shift = width // step
        if width % step:  # a step that does not divide the window: the slow, exact way
            for user_ranges in ranges.values():
                add_distinct(deltas, [(a, timeline.after(origin + (b - 1) * step + width)) for a, b in user_ranges])
        else:
            for user_ranges in ranges.values():
                add_distinct(deltas, [(a, b + shift) for a, b in user_ranges])
        values.append(deltas.values())
    dau, wau, mau = values
    family("business_daily_active_users").add(dau)
    family("business_weekly_active_users").add(wau)
    family("business_monthly_active_users").add(mau)
    family("business_stickiness_ratio").add([d / m if m > 0 else 0.0 for d, m in zip(dau, mau, strict=True)])


def _sessions(history: History, timeline: Timeline, family: Any) -> None:
    total = Deltas(timeline)
    # The last hour's ended sessions: their number, duration, page views and bounces.
    hour = [Deltas(timeline) for _ in range(4)]
    day_sessions, day_converted = Deltas(timeline), Deltas(timeline)
    first_order: dict[int, int] = {}
    for _, session, *_rest, seen in history.orders:
        if session is not None:
            first_order[session] = min(seen, first_order.get(session, seen))
    seen_index, after = timeline.seen, timeline.after
    totals, sessions, seconds, pages, bounces = (total.changes, *(d.changes for d in hour))
    day = day_sessions.changes
    for session_id, _, started, seen, ended, page_views in history.sessions:
        first = seen_index(seen)
        totals[first] += 1
        if ended:
            end = after(started + HOUR)
            if first < end:
                sessions[first] += 1
                sessions[end] -= 1
                duration = seen - started
                seconds[first] += duration
                seconds[end] -= duration
                pages[first] += page_views
                pages[end] -= page_views
                if page_views <= 1:
                    bounces[first] += 1
                    bounces[end] -= 1
        end = after(started + DAY)
        if first < end:
            day[first] += 1
            day[end] -= 1
        if session_id in first_order:
            day_converted.add_during(max(seen, first_order[session_id]), started + DAY)
    counts = total.values()
    family("business_sessions_total").add(_present(counts, counts))
    n = hour[0].values()
    family("business_session_duration_average_seconds").add(_ratio(hour[1].values(), n))
    family("business_pages_per_session_average").add(_ratio(hour[2].values(), n))
    family("business_bounce_rate_ratio").add(_ratio(hour[3].values(), n))
    family("business_conversion_rate_ratio").add(_ratio(day_converted.values(), day_sessions.values()))


def _orders(history: History, timeline: Timeline, family: Any, top_n: int) -> None:
    def deltas() -> Deltas:
        return Deltas(timeline)

    orders: dict[str, Deltas] = defaultdict(deltas)
    gmv: dict[str, Deltas] = defaultdict(deltas)
    daily: dict[tuple[str, str], Deltas] = defaultdict(deltas)
    paid: dict[str, Deltas] = defaultdict(deltas)
    paid_cents: dict[str, Deltas] = defaultdict(deltas)
    for _, _, status, currency, cents, at, seen in history.orders:
        orders[currency].add_from(seen)
        gmv[currency].add_from(seen, max(cents, 0))
        daily[status, currency].add_during(seen, at + DAY)
        if status == "paid":
            paid[currency].add_during(seen, at + DAY)
            paid_cents[currency].add_during(seen, at + DAY, cents)
    for currency in sorted(orders):
        counts = orders[currency].values()
        family("business_orders_total").add(_present(counts, counts), currency=currency)
    for currency in sorted(orders):
        family("business_gmv_total").add(_money(gmv[currency].values(), orders[currency].values()), currency=currency)
    for status, currency in sorted(daily):
        counts = daily[status, currency].values()
        family("business_daily_orders").add(_present(counts, counts), status=status, currency=currency)
    for currency in sorted(paid):
        family("business_average_order_value").add(
            _ratio(paid_cents[currency].values(), paid[currency].values(), 100), currency=currency
        )
    categories: dict[str, Deltas] = defaultdict(deltas)
    for category, at, seen in history.order_categories:
        categories[category].add_during(seen, at + DAY)
    _top(family("business_category_orders"), {c: d.values() for c, d in categories.items()}, top_n)


def _top(target: Family, counts: dict[str, list[int]], top_n: int) -> None:
    """The pack's ranking at each instant: the top `top_n` by count (ties: by name), the rest as "other"."""
    names = sorted(counts)
    length = len(counts[names[0]]) if names else 0
    series: dict[str, list[Value]] = {name: [None] * length for name in [*names, "other"]}
    for index, column in enumerate(zip(*(counts[name] for name in names), strict=True)):
        ranked = sorted((-count, name) for name, count in zip(names, column, strict=True) if count > 0)
        for negative, name in ranked[:top_n]:
            series[name][index] = -negative
        if len(ranked) > top_n:
            series["other"][index] = -sum(negative for negative, _ in ranked[top_n:])
    for name, values in series.items():
        if any(v is not None for v in values):
            target.add(values, **{target.label_names[0]: name})


def _payments_and_refunds(history: History, timeline: Timeline, family: Any) -> None:
    def deltas() -> Deltas:
        return Deltas(timeline)

    completed: dict[str, Deltas] = defaultdict(deltas)
    amounts: dict[str, Deltas] = defaultdict(deltas)
    attempts: dict[tuple[str, str], Deltas] = defaultdict(deltas)
    failures: dict[str, Deltas] = defaultdict(deltas)
    for status, method, reason, currency, cents, seen in history.payments:
        attempts[status, method].add_from(seen)
        if status == "succeeded":
            completed[currency].add_from(seen)
            amounts[currency].add_from(seen, max(cents, 0))
        elif status == "failed":
            failures[reason or "unknown"].add_from(seen)
    for currency in sorted(completed):
        counts = completed[currency].values()
        family("business_transactions_completed_total").add(_present(counts, counts), currency=currency)
    for currency in sorted(completed):
        family("business_transactions_completed_amount_total").add(
            _money(amounts[currency].values(), completed[currency].values()), currency=currency
        )
    refunds: dict[tuple[str, str], Deltas] = defaultdict(deltas)
    refunded: dict[tuple[str, str], Deltas] = defaultdict(deltas)
    refunded_orders: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for order_id, kind, currency, cents, at, seen in history.refunds:
        refunds[kind, currency].add_from(seen)
        refunded[kind, currency].add_from(seen, max(cents, 0))
        refunded_orders[order_id].append((timeline.seen(seen), timeline.after(at + 7 * DAY)))
    for kind, currency in sorted(refunds):
        counts = refunds[kind, currency].values()
        family("business_refunds_total").add(_present(counts, counts), kind=kind, currency=currency)
    for kind, currency in sorted(refunds):
        family("business_refunded_amount_total").add(
            _money(refunded[kind, currency].values(), refunds[kind, currency].values()), kind=kind, currency=currency
        )
    # Orders refunded in the last 7 days (each once) over the paid orders placed in the last 7 days.
    week_refunded, week_paid = Deltas(timeline), Deltas(timeline)
    for ranges in refunded_orders.values():
        add_distinct(week_refunded, ranges)
    for _, _, status, _, _, at, seen in history.orders:
        if status == "paid":
            week_paid.add_during(seen, at + 7 * DAY)
    family("business_refund_rate_ratio").add(_ratio(week_refunded.values(), week_paid.values()))
    for status, method in sorted(attempts):
        counts = attempts[status, method].values()
        family("business_payment_attempts_total").add(_present(counts, counts), status=status, method=method)
    for reason in sorted(failures):
        counts = failures[reason].values()
        family("business_payment_failures_total").add(_present(counts, counts), reason=reason)


def _funnel(history: History, timeline: Timeline, family: Any) -> None:
    """Sessions started in the window that reached each step and every step before it (any order)."""
    steps = marketplace.FUNNEL_STEPS
    windows = marketplace.FUNNEL_WINDOWS
    reached = [[Deltas(timeline) for _ in range(len(steps) + 1)] for _ in windows]
    changes = [[d.changes for d in per_window] for per_window in reached]
    seen_index, after = timeline.seen, timeline.after
    last = timeline.grid.instant(timeline.grid.count - 1)
    no_steps: dict[str, int] = {}
    for session_id, _, started, seen, _, _ in history.sessions:
        firsts = history.first_steps.get(session_id, no_steps)
        ends = [after(started + width) for _, width in windows]
        at = seen  # when the session had reached steps 1..n: written, and each step's first event by then
        for n in range(len(steps) + 1):
            if n:
                first = firsts.get(steps[n - 1])
                if first is None:
                    break
                if first > at:
                    at = first
                    if at > last:
                        break
            index = seen_index(at)
            for w, end in enumerate(ends):
                if index < end:
                    changes[w][n][index] += 1
                    changes[w][n][end] -= 1
    target = family("business_funnel_sessions")
    for w, (window, _) in enumerate(windows):
        for n, step in enumerate(("session_started", *steps)):
            target.add(list(reached[w][n].values()), step=step, window=window)


# ---------------------------------------------------------------------------------------- the output


def _label_text(labels: Labels) -> str:
    escaped = (v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') for _, v in labels)
    return ",".join(f'{k}="{v}"' for (k, _), v in zip(labels, escaped, strict=True))


def write_openmetrics(out: TextIO, families: Sequence[Family], grid: Grid, target: Labels) -> int:
    """Write the families (each series' samples in time order, families not interleaved) and `# EOF`;
    returns the number of samples."""
    stamps = [str(grid.instant(i)) for i in range(grid.count)]
    samples = 0
    for f in families:
        base = f.name.removesuffix("_total") if f.type == "counter" else f.name
        out.write(f"# HELP {base} {f.help}\n# TYPE {base} {f.type}\n")
        for labels, values in f.series.items():
            prefix = f"{f.name}{{{_label_text((*labels, *target))}}} "
            lines = [f"{prefix}{v} {t}\n" for v, t in zip(values, stamps, strict=True) if v is not None]
            samples += len(lines)
            out.write("".join(lines))
    out.write("# EOF\n")
    return samples


# ------------------------------------------------------------------------------------------- command


def _parse_time(value: str) -> int:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def _parse_step(value: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit() or int(value[:-1]) <= 0:
        raise argparse.ArgumentTypeError(f"not a step such as 30s, 1m or 5m: {value!r}")
    return int(value[:-1]) * units[value[-1]]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m exporter.demo.backfill",
        description="Write the marketplace KPI series Pulse would have exported over a demo database's "
        "history, as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.",
    )
    parser.add_argument("--db", type=Path, required=True, help="the demo's SQLite database (demo.db)")
    parser.add_argument("--out", type=Path, required=True, help="the OpenMetrics file to write")
    parser.add_argument("--start", type=_parse_time, help="first instant, ISO 8601 UTC (default: the first session)")
    parser.add_argument(
        "--end", type=_parse_time, help=f"last instant, ISO 8601 UTC (default: {END_MARGIN // 60} minutes ago)"
    )
    parser.add_argument("--step", type=_parse_step, default=60, help="time between samples (default 1m)")
    parser.add_argument("--job", default=DEFAULT_JOB, help=f"the job label (default {DEFAULT_JOB})")
    parser.add_argument("--instance", default=DEFAULT_INSTANCE, help=f"the instance label (default {DEFAULT_INSTANCE})")
    parser.add_argument("--top-n", type=int, default=marketplace.TOP_N, help="the pack's top_n (default %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s backfill: %(message)s", stream=sys.stderr)
    if not args.db.is_file():
        log.error("no database at %s", args.db)
        return 1
    began = time.monotonic()
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    try:
        span = history_span(db)
        if span is None:
            log.error("%s has no sessions: nothing to backfill", args.db)
            return 1
        start = args.start if args.start is not None else span[0]
        end = args.end if args.end is not None else int(time.time()) - END_MARGIN
        start = start - start % args.step
        if end < start:
            log.error("the end (%s) is before the start (%s)", _iso(end), _iso(start))
            return 1
        grid = Grid(start, args.step, (end - start) // args.step + 1)
        history = read_history(db)
    finally:
        db.close()
    read = time.monotonic()
    families = compute(history, grid, args.top_n)
    computed = time.monotonic()
    target = (("instance", args.instance), ("job", args.job))
    with args.out.open("w", encoding="utf-8") as out:
        samples = write_openmetrics(out, families, grid, target)
    log.info(
        "%s samples of %s series, %s to %s every %ss, into %s in %.1fs (read %.1fs, compute %.1fs, write %.1fs)",
        samples, sum(len(f.series) for f in families), _iso(grid.start), _iso(grid.instant(grid.count - 1)),
        grid.step, args.out, time.monotonic() - began, read - began, computed - read, time.monotonic() - computed,
    )  # fmt: skip
    return 0


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def samples_at(families: Iterable[Family], grid: Grid, instant: int) -> Iterator[tuple[str, Labels, Value]]:
    """Each series' value at `instant` (one of the grid's), for comparing with the pack's SQL."""
    index = (instant - grid.start) // grid.step
    assert grid.instant(index) == instant, "not an instant of the grid"
    assert 0 <= index < grid.count, "not an instant of the grid"
    for f in families:
        for labels, values in f.series.items():
            if values[index] is not None:
                yield f.name, labels, values[index]


if __name__ == "__main__":
    sys.exit(main())
