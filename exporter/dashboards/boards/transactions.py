"""Transactions: orders and sales per currency, what sells, refunds and returns, payment failures, and
whether the shop's data can be trusted (integrity checks, how fresh each table is). From the marketplace
KPI pack (docs/marketplace-schema.md) and the recording rules of prometheus/rules/business.yml.

Money is per currency, never added across currencies: the panels use Grafana's plain "short" unit and
name the currency in the legend (a currency unit would be right for one currency only). The `currency`
variable narrows the money panels; counts of orders are the same in every currency and may be summed.
Hourly sums read the raw counters, so that they cover the whole time range as soon as the history is
there (a recorded series starts when its rule first ran); rates and ratios are the recorded ones.
"""

from __future__ import annotations

from exporter.dashboards.model import Board, Panel, Query, Row, Threshold, Variable

CURRENCY = 'currency=~"$currency"'
WEEK_BEFORE = "a week before"

BOARD = Board(
    key="transactions",
    title="Pulse / Transactions",
    description=(
        "Orders and sales (GMV) per currency against a week before, order status, top categories and "
        "products, refunds and returns, payment failures, and the integrity and freshness of the shop's data."
    ),
    tags=("business",),
    variables=(Variable("currency", "Currency", "business_orders_total", "currency"),),
    rows=(
        Row(
            "Orders and sales",
            (
                Panel(
                    "Orders per hour",
                    "Orders placed in the hour up to each moment, whatever their status, per currency: now and "
                    "at the same time a week before. OrdersDropping fires when all currencies together fall "
                    "under half their usual level.",
                    "short",
                    (
                        Query(f"sum by (currency) (increase(business_orders_total{{{CURRENCY}}}[1h]))", "{{currency}}"),
                        Query(
                            f"sum by (currency) (increase(business_orders_total{{{CURRENCY}}}[1h] offset 1w))",
                            "{{currency}}, " + WEEK_BEFORE,
                        ),
                    ),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "GMV per hour",
                    "Gross merchandise value: the total of the orders placed in the hour up to each moment, in "
                    "each currency's major unit (euros, dollars, pounds), now and a week before. GmvDropping "
                    "fires when a currency falls under half its usual level.",
                    "short",
                    (
                        Query(f"sum by (currency) (increase(business_gmv_total{{{CURRENCY}}}[1h]))", "{{currency}}"),
                        Query(
                            f"sum by (currency) (increase(business_gmv_total{{{CURRENCY}}}[1h] offset 1w))",
                            "{{currency}}, " + WEEK_BEFORE,
                        ),
                    ),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "Orders placed and payments completed per minute",
                    "Orders placed per minute and successful payments per minute, per currency. Payments trail "
                    "orders: a bank transfer completes hours after its order.",
                    "short",
                    (
                        Query(
                            f"sum by (currency) (rate(business_orders_total{{{CURRENCY}}}[$__rate_interval])) * 60",
                            "{{currency}} orders",
                        ),
                        Query(
                            "sum by (currency) (rate(business_transactions_completed_total"
                            f"{{{CURRENCY}}}[$__rate_interval])) * 60",
                            "{{currency}} payments",
                        ),
                    ),
                    width=8,
                    minimum=0,
                ),
                Panel(
                    "Average order value",
                    "Mean amount of the paid orders placed in the last 24 hours, per currency (major unit), now "
                    "and a week before.",
                    "short",
                    (
                        Query(f"avg by (currency) (business_average_order_value{{{CURRENCY}}})", "{{currency}}"),
                        Query(
                            f"avg by (currency) (business_average_order_value{{{CURRENCY}}} offset 1w)",
                            "{{currency}}, " + WEEK_BEFORE,
                        ),
                    ),
                    width=8,
                    minimum=0,
                ),
                Panel(
                    "Money taken per hour",
                    "Amount of the successful payments of the hour up to each moment, per currency (major "
                    "unit): what reached the shop's accounts, against GMV, which counts orders when placed.",
                    "short",
                    (
                        Query(
                            "sum by (currency) "
                            f"(increase(business_transactions_completed_amount_total{{{CURRENCY}}}[1h]))",
                            "{{currency}}",
                        ),
                    ),
                    width=8,
                    minimum=0,
                ),
            ),
        ),
        Row(
            "What sells",
            (
                Panel(
                    "Orders by status, last 24 hours",
                    "Orders placed in the last 24 hours by their current status. Many pending orders mean "
                    "payments that do not complete; payment_failed and cancelled are lost sales.",
                    "short",
                    (
                        Query(
                            f"sort_desc(sum by (status) (business_daily_orders{{{CURRENCY}}}))",
                            "{{status}}",
                            instant=True,
                        ),
                    ),
                    kind="bargauge",
                    width=6,
                    height=9,
                    minimum=0,
                ),
                Panel(
                    "Orders by category, last 24 hours",
                    "Orders of the last 24 hours containing an item of each category: the top 10 categories, "
                    "the rest as 'other'. An order with items of two categories counts in both.",
                    "short",
                    (Query("sort_desc(sum by (category) (business_category_orders))", "{{category}}", instant=True),),
                    kind="bargauge",
                    width=6,
                    height=9,
                    minimum=0,
                ),
                Panel(
                    "Top products by orders, last 24 hours",
                    "The products (SKU) in the most paid orders of the last 24 hours.",
                    "short",
                    (
                        Query(
                            'sort_desc(topk(10, sum by (product) (business_product_orders{product!="other"})))',
                            "{{product}}",
                            instant=True,
                        ),
                    ),
                    kind="bargauge",
                    width=6,
                    height=9,
                    minimum=0,
                ),
                Panel(
                    "Top products by revenue, last 24 hours",
                    "The products (SKU) with the most revenue (quantity times price) in the paid orders of the last "
                    "24 hours, ranked in each currency separately: choose a currency above to compare like "
                    "with like.",
                    "short",
                    (
                        Query(
                            "sort_desc(topk by (currency) (5, sum by (product, currency) "
                            f'(business_product_revenue{{{CURRENCY}, product!="other"}})))',
                            "{{product}} ({{currency}})",
                            instant=True,
                        ),
                    ),
                    kind="bargauge",
                    width=6,
                    height=9,
                    minimum=0,
                ),
            ),
        ),
        Row(
            "Refunds and returns",
            (
                Panel(
                    "Refunds and returns per hour",
                    "Refunds (money back) and returns (goods sent back) created, per hour, by kind. Spikes are "
                    "a batch of complaints, a faulty product or fraud.",
                    "short",
                    (
                        Query(
                            f"sum by (kind) (rate(business_refunds_total{{{CURRENCY}}}[$__rate_interval])) * 3600",
                            "{{kind}}",
                        ),
                    ),
                    width=8,
                    minimum=0,
                ),
                Panel(
                    "Refunds per order",
                    "Refunds and returns of the last 15 minutes per order placed in them, and its usual level "
                    "at this time of the week (the mean of the same hour over the last weeks). RefundRateHigh "
                    "warns above 25 % and 3 times the usual.",
                    "percentunit",
                    (
                        Query("service:business_refunds_per_order:ratio_rate15m", "last 15 minutes"),
                        Query("service:business_refunds_per_order:ratio_rate1h_baseline", "usual"),
                    ),
                    width=8,
                    minimum=0,
                    thresholds=(Threshold(0.25, "red"),),
                ),
                Panel(
                    "Refund rate, last 7 days",
                    "Orders refunded or returned in the last 7 days per paid order of those 7 days, now and a "
                    "week before: the slower trend behind the spikes.",
                    "percentunit",
                    (
                        Query("avg(business_refund_rate_ratio)", "now"),
                        Query("avg(business_refund_rate_ratio offset 1w)", WEEK_BEFORE),
                    ),
                    width=8,
                    minimum=0,
                ),
            ),
        ),
        Row(
            "Payments",
            (
                Panel(
                    "Payment failures by reason",
                    "Failed payment attempts per minute by the reason the provider gave. A jump of one reason "
                    "points at its cause: card_declined at a bank, processing_error at the provider, "
                    "fraud_suspected at an attack.",
                    "short",
                    (
                        Query(
                            "sum by (reason) (rate(business_payment_failures_total[$__rate_interval])) * 60",
                            "{{reason}}",
                        ),
                    ),
                    width=12,
                    minimum=0,
                    stacked=True,
                ),
                Panel(
                    "Payment failure ratio by method",
                    "Share of the payment attempts that failed: per method (card, PayPal, bank transfer) over "
                    "5 minutes, and over every method over 15 minutes against its usual level at this time of "
                    "the week. PaymentFailureRateHigh warns when all methods are above 20 % (and 3 times the "
                    "usual), pages above 50 %. No line: no attempt in the window.",
                    "percentunit",
                    (
                        Query("method:business_payment_failures:ratio_rate5m", "{{method}}"),
                        Query("service:business_payment_failures:ratio_rate15m", "all methods"),
                        Query("service:business_payment_failures:ratio_rate1h_baseline", "all methods, usual"),
                    ),
                    width=12,
                    minimum=0,
                    thresholds=(Threshold(0.2, "yellow"), Threshold(0.5, "red")),
                ),
            ),
        ),
        Row(
            "Data quality",
            (
                Panel(
                    "Integrity violations",
                    "Rows breaking the marketplace's data rules, per check: orders without a customer, "
                    "negative amounts, payments without an order, refunds above their order. Anything above 0 "
                    "needs a look; DataIntegrityViolations warns when a count grows.",
                    "short",
                    (Query("max by (check) (business_integrity_violations)", "{{check}}", instant=True),),
                    kind="stat",
                    width=12,
                    height=6,
                    thresholds=(Threshold(1, "red"),),
                ),
                Panel(
                    "Newest row's age",
                    "How long ago each table last got a row (by its time column). A growing age is a writer, "
                    "sync or ETL that stopped: BusinessTableStale warns past 2 hours (12 for refunds, 24 for "
                    "users). Empty tables are left out.",
                    "s",
                    (
                        Query(
                            "time() - max by (table) (business_table_newest_row_timestamp_seconds > 0)",
                            "{{table}}",
                            instant=True,
                        ),
                    ),
                    kind="bargauge",
                    width=12,
                    height=6,
                    minimum=0,
                    thresholds=(Threshold(7200, "yellow"), Threshold(43200, "red")),
                ),
            ),
        ),
    ),
)
