"""Transactions, from the marketplace KPI pack's counters, exact over the period (context.counter_increase):

- orders: business_orders_total; GMV per currency: business_gmv_total; average order value: GMV / orders
  in each currency;
- refunds: business_refunds_total (refunds and returns); refund rate: refunds / orders;
- payment failures: business_payment_attempts_total{status="failed"}, and their share of all attempts.

Top products: the pack exports the best sellers of the last 24 hours (business_product_orders and
business_product_revenue, a gauge); their values at the end of each day of the period are added up.
"""

from __future__ import annotations

from exporter.reports.model import Column, Figure, ReportWindow, Section, Table
from exporter.reports.sections.context import Context, SectionSpec, counter_increase, last_before, ratio

TOP = 10


def total(ctx: Context, selector: str, window: ReportWindow, what: str) -> float | None:
    return ctx.scalar(f"sum({counter_increase(selector, window.start, window.end)})", what)


def per_currency(ctx: Context, selector: str, window: ReportWindow, what: str) -> dict[str, float]:
    return ctx.by(f"sum by (currency) ({counter_increase(selector, window.start, window.end)})", "currency", what)


def top_products(ctx: Context, window: ReportWindow) -> tuple[dict[str, float], dict[tuple[str, ...], float]]:
    """({product: orders}, {(product, currency): revenue}) summed over the days of the window."""
    orders: dict[str, float] = {}
    revenue: dict[tuple[str, ...], float] = {}
    for day_end in ctx.day_ends(window):
        found = ctx.by(
            f"sum by (product) ({last_before('business_product_orders', day_end)})", "product", "top products"
        )
        for product, count in found.items():
            orders[product] = orders.get(product, 0.0) + count
        money = ctx.by_labels(f'sum by (product, currency) ({last_before("business_product_revenue", day_end)})',
                              ("product", "currency"), "top products")  # fmt: skip
        for key, amount in money.items():
            revenue[key] = revenue.get(key, 0.0) + amount
    return orders, revenue


def build(ctx: Context) -> Section:
    def counts(window: ReportWindow) -> dict[str, float | None]:
        orders = total(ctx, "business_orders_total", window, "orders")
        refunds = total(ctx, "business_refunds_total", window, "refunds")
        attempts = total(ctx, "business_payment_attempts_total", window, "payment attempts")
        failed = total(ctx, 'business_payment_attempts_total{status="failed"}', window, "payment failures")
        return {
            "orders": orders,
            "refunds": refunds,
            "refund_rate": ratio(refunds, orders),
            "payment_failures": failed if failed is not None else (0.0 if attempts is not None else None),
            "payment_failure_ratio": ratio(failed or 0.0, attempts),
        }

    now, before = counts(ctx.window), counts(ctx.previous)
    figures = [
        Figure("orders", "Orders", now["orders"], "short", before["orders"], "higher"),
        Figure("refunds", "Refunds and returns", now["refunds"], "short", before["refunds"], "lower"),
        Figure("refund_rate", "Refunds per order", now["refund_rate"], "percentunit", before["refund_rate"], "lower"),
        Figure("payment_failures", "Failed payments", now["payment_failures"], "short", before["payment_failures"],
               "lower"),
        Figure("payment_failure_ratio", "Failed payments, share of attempts", now["payment_failure_ratio"],
               "percentunit", before["payment_failure_ratio"], "lower"),
    ]  # fmt: skip
    gmv = {w: per_currency(ctx, "business_gmv_total", w, "GMV") for w in ctx.windows()}
    order_counts = {w: per_currency(ctx, "business_orders_total", w, "orders") for w in ctx.windows()}
    for currency in sorted(gmv[ctx.window]):
        unit = f"currency{currency}"
        value, previous = gmv[ctx.window][currency], gmv[ctx.previous].get(currency)
        figures += [
            Figure(f"gmv_{currency}", f"GMV ({currency})", value, unit, previous, "higher"),
            Figure(f"aov_{currency}", f"Average order value ({currency})",
                   ratio(value, order_counts[ctx.window].get(currency)), unit,
                   ratio(previous, order_counts[ctx.previous].get(currency)), "higher"),
        ]  # fmt: skip
    products, revenue = top_products(ctx, ctx.window)
    top = sorted(((p, n) for p, n in products.items() if p != "other"), key=lambda item: (-item[1], item[0]))[:TOP]
    tables = [
        Table("Top products by orders (paid orders, day by day)", (Column("Product"), Column("Orders", "short")),
              tuple(top)),
        Table("Top products by revenue", (Column("Product"), Column("Currency"), Column("Revenue", "short")),
              tuple(sorted(((p, c, v) for (p, c), v in revenue.items() if p != "other"),
                           key=lambda row: (-row[2], row[0]))[:TOP])),
    ]  # fmt: skip
    notes = [] if top else ["No data for top products by orders (business_product_orders)."]
    if not revenue:
        notes.append("No data for top products by revenue (business_product_revenue).")
    if not gmv[ctx.window]:
        notes.append("No data for GMV (business_gmv_total).")
    charts = (
        ctx.chart("transactions", "Orders per hour"),
        ctx.chart("transactions", "GMV per hour"),
        ctx.chart("transactions", "Payment failures by reason"),
    )
    return Section("transactions", "Transactions", tuple(figures), tuple(tables), charts, tuple(notes))


SECTION = SectionSpec("transactions", "Transactions", build)
