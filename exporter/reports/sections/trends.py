"""The monthly review's trends: the main figures week by week (ISO weeks, cut to the month), computed as
the sections above compute them over the whole month (uptime with maintenance taken out, requests and
server errors, sessions, orders and GMV)."""

from __future__ import annotations

from exporter.reports.model import Column, Section, Table, Value
from exporter.reports.sections import behaviour, performance, transactions, uptime
from exporter.reports.sections.context import Context, SectionSpec, ratio


def build(ctx: Context) -> Section:
    weeks = ctx.weeks(ctx.window)
    services = uptime.services(ctx)
    currencies = sorted(transactions.per_currency(ctx, "business_gmv_total", ctx.window, "GMV"))
    columns = [Column("Week")]
    columns += [Column(f"Uptime, {title}", "percentunit") for title, _ in services.values()]
    columns += [Column("Requests", "short"), Column("5xx ratio", "percentunit"), Column("Sessions", "short"),
                Column("Orders", "short")]  # fmt: skip
    columns += [Column(f"GMV ({currency})", f"currency{currency}") for currency in currencies]
    rows: list[tuple[Value, ...]] = []
    for week in weeks:
        ctx.inputs.progress(f"Trends: {week.label}")
        requests = performance.requests(ctx, week)
        errors = performance.requests(ctx, week, "5..")
        total = sum(requests.values()) if requests else None
        gmv = transactions.per_currency(ctx, "business_gmv_total", week, "GMV")
        row: list[Value] = [week.label]
        row += [uptime.uptime(ctx, name, week)[0] for name in services]
        row += [total, ratio(sum(errors.values()), total), behaviour.sessions(ctx, week),
                transactions.total(ctx, "business_orders_total", week, "orders")]  # fmt: skip
        row += [gmv.get(currency) for currency in currencies]
        rows.append(tuple(row))
    table = Table("Week by week", tuple(columns), tuple(rows))
    return Section("trends", "Trends", tables=(table,))


SECTION = SectionSpec("trends", "Trends", build, periods=("month",))
