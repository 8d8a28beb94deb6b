"""The marketplace's business KPIs (docs/marketplace-schema.md): recording rules that dashboards and reports
reuse, and the alerts for marketing, customer service and the platform engineers.

Recorded series are named `level:metric:operations`. The level is the labels kept: `service` when
everything is summed (those series carry `service` = `business.service`), `currency` for money, which is
only ever summed within one currency, `method`, and `step_window` for the funnel. Operations are the
usual `rate5m`, `increase1h`, `ratio_rate15m`. The week-over-week comparisons of orders, GMV, sessions
and conversion count over the `window` setting (default 1h), which their names follow: `increase1h`,
`ratio_increase1h`, or `increase2m` with `window: 2m` (a test's). Three operations more for them:
- `_offset1w`: the same quantity at the same time a week ago;
- `_baseline`: the usual value at this time of the week, the mean of the same time 1..`baseline_weeks`
  weeks ago. Baselines are computed from the raw series with `offset`, never from recorded ones: they
  work as soon as the rules are loaded into a Prometheus that holds (or was backfilled with) history. A
  missing older week counts as last week's value; without last week's data there is no baseline at all,
  and every alert that compares with it stays silent (the first week of monitoring);
- `_vs_baseline`: now divided by the baseline (1 = as usual, 0.5 = half the usual).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping

import pydantic

from exporter.bundle.rules import Alert, Group, Recording, Rule, Severity
from exporter.bundle.sets.base import PromDuration, RuleSet, RuleSetSettings, Selectors
from exporter.config.types import StrictModel
from exporter.kpis.packs.marketplace import FUNNEL_STEPS

# The steps of business_funnel_sessions, in order; each is compared with the one before it.
FUNNEL = ("session_started", *FUNNEL_STEPS)

# A quantity now (offset "") or at an offset ("1w"): now, last week and the baseline from one definition.
At = Callable[[str], str]


class DropSettings(StrictModel):
    """A week-over-week "Dropping" alert: the value now against its usual value at this time of the week."""

    warning_ratio: float = pydantic.Field(0.5, gt=0, le=1)  # fire below this fraction of the usual value
    critical_ratio: float | None = pydantic.Field(None, gt=0, le=1)  # page below this one (null: never)
    minimum: float = pydantic.Field(0, ge=0)  # the usual value under which the alert stays silent
    pending_for: PromDuration = "15m"  # how long the drop must last


class OrdersSettings(DropSettings):
    critical_ratio: float | None = pydantic.Field(0.2, gt=0, le=1)
    minimum: float = pydantic.Field(20, ge=0)  # orders an hour


class GmvSettings(DropSettings):
    minimum: float = pydantic.Field(1000, ge=0)  # GMV an hour, in each currency's major unit
    minimum_by_currency: dict[str, float] = pydantic.Field(default_factory=dict)  # currency -> minimum


class SessionsSettings(DropSettings):
    minimum: float = pydantic.Field(300, ge=0)  # sessions an hour


class ActiveUsersSettings(DropSettings):
    warning_ratio: float = pydantic.Field(0.8, gt=0, le=1)  # a 24-hour window moves slowly
    minimum: float = pydantic.Field(100, ge=0)  # daily active users
    pending_for: PromDuration = "30m"


class ConversionSettings(DropSettings):
    minimum: float = pydantic.Field(300, ge=0)  # sessions an hour
    pending_for: PromDuration = "30m"


class FunnelSettings(StrictModel):
    collapsed_ratio: float = pydantic.Field(0.2, gt=0, le=1)  # a step's conversion now / usual below this
    minimum_sessions: float = pydantic.Field(50, ge=0)  # sessions at the step before, now and usually
    pending_for: PromDuration = "15m"


class SpikeSettings(StrictModel):
    """A ratio that spikes: high in absolute terms and, once there is a baseline, against the usual one."""

    warning_ratio: float = pydantic.Field(0.2, gt=0, le=1)  # never fire below this ratio
    baseline_factor: float = pydantic.Field(3, ge=1)  # ... nor below this many times the usual ratio
    critical_ratio: float | None = pydantic.Field(None, gt=0, le=1)  # page above this (null: never)
    minimum: float = pydantic.Field(1, ge=0)  # the volume under which the alert stays silent
    pending_for: PromDuration = "5m"


class PaymentFailuresSettings(SpikeSettings):
    critical_ratio: float | None = pydantic.Field(0.5, gt=0, le=1)
    minimum: float = pydantic.Field(1, ge=0)  # payment attempts a minute


class RefundsSettings(SpikeSettings):
    warning_ratio: float = pydantic.Field(0.25, gt=0, le=1)
    minimum: float = pydantic.Field(5, ge=0)  # refunds and returns in the 15 minutes


class StaleSettings(StrictModel):
    max_age: PromDuration = "2h"  # a table whose newest row is older: its writer or sync stopped
    max_age_by_table: dict[str, PromDuration] = pydantic.Field(
        default_factory=lambda: {"refunds": "12h", "users": "24h"}
    )
    pending_for: PromDuration = "5m"


# Each alert's section is its own model with its own defaults, so that a partial section
# (`orders: {minimum: 50}`) keeps the other defaults of that alert.
class BusinessSettings(RuleSetSettings):
    service: str = "marketplace"
    # The span the Dropping alerts on orders, GMV, sessions and conversion count over (now and in the
    # baseline weeks); the recorded names follow it (increase1h, increase2m). Shorter: faster, noisier.
    window: PromDuration = "1h"
    baseline_weeks: int = pydantic.Field(3, ge=1, le=4)
    orders: OrdersSettings = OrdersSettings()
    gmv: GmvSettings = GmvSettings()
    sessions: SessionsSettings = SessionsSettings()
    active_users: ActiveUsersSettings = ActiveUsersSettings()
    conversion: ConversionSettings = ConversionSettings()
    funnel: FunnelSettings = FunnelSettings()
    payment_failures: PaymentFailuresSettings = PaymentFailuresSettings()
    refunds: RefundsSettings = RefundsSettings()
    integrity_window: PromDuration = "1h"
    stale_tables: StaleSettings = StaleSettings()


_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str) -> float:
    """A Prometheus duration (PromDuration) in seconds."""
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", duration))


def number(value: float) -> str:
    """A threshold as people write it: 20, 0.5, not 20.0."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def per_label(left: Callable[[str], str], op: str, label: str, default: float, overrides: Mapping[str, float]) -> str:
    """`left(matcher) op threshold`, the threshold of each label value in `overrides` for that value and
    `default` for all others: a union of comparisons, one per override and one for the rest."""
    if not overrides:
        return f"{left('')} {op} {number(default)}"
    values = sorted(overrides)
    parts = [f"{left(label + '=' + _quoted(value))} {op} {number(overrides[value])}" for value in values]
    others = label + "!~" + _quoted("|".join(re.escape(value) for value in values))
    parts.append(f"{left(others)} {op} {number(default)}")
    return "\nor\n".join(f"({part})" for part in parts)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shift(offset: str) -> str:
    return f" offset {offset}" if offset else ""


def _selector(metric: str, matcher: str) -> str:
    """A recorded series, with a label matcher when one is given."""
    return f"{metric}{{{matcher}}}" if matcher else metric


class _Rules:
    def __init__(self, settings: BusinessSettings, selectors: Selectors) -> None:
        self.settings = settings
        self.job = selectors.pulse
        self.service = settings.service
        self.window = settings.window
        self.last = "the last hour" if settings.window == "1h" else f"the last {settings.window}"
        weeks = settings.baseline_weeks
        self.usual = "the same time last week" if weeks == 1 else f"the mean of the same time of the last {weeks} weeks"

    def raw(self, metric: str, matchers: str = "") -> str:
        """A series of Pulse's scrape job."""
        return f"{metric}{{{self.job}{', ' + matchers if matchers else ''}}}"

    def record(self, name: str, expr: str) -> Recording:
        return Recording(name, expr, {"service": self.service} if name.startswith("service:") else {})

    def baseline(self, at: At) -> str:
        weeks = self.settings.baseline_weeks
        if weeks == 1:
            return at("1w")
        terms = [at("1w")] + [f"({at(f'{n}w')}\n  or\n  {at('1w')})" for n in range(2, weeks + 1)]
        return "(\n  " + "\n+\n  ".join(terms) + f"\n) / {weeks}"

    def weekly(self, name: str, at: At, *, offset1w: bool = True) -> list[Rule]:
        """`name` now, a week ago, its baseline, and now / baseline."""
        rules: list[Rule] = [self.record(name, at(""))]
        if offset1w:
            rules.append(self.record(f"{name}_offset1w", at("1w")))
        rules.append(self.record(f"{name}_baseline", self.baseline(at)))
        rules.append(self.record(f"{name}_vs_baseline", f"{name}\n/\n{name}_baseline"))
        return rules

    def increase(self, metric: str, window: str, by: str = "", matchers: str = "") -> At:
        grouping = f" by ({by})" if by else ""
        return lambda offset: f"sum{grouping} (increase({self.raw(metric, matchers)}[{window}]{_shift(offset)}))"

    def gauge(self, metric: str, by: str = "", matchers: str = "") -> At:
        grouping = f" by ({by})" if by else ""
        return lambda offset: f"sum{grouping} ({self.raw(metric, matchers)}{_shift(offset)})"

    @staticmethod
    def ratio(numerator: At, denominator: At) -> At:
        return lambda offset: f"({numerator(offset)} / {denominator(offset)})"

    def dropping(
        self, name: str, recorded: str, drop: DropSettings, *, summary: str, what: str, guard: str = ""
    ) -> list[Alert]:
        """`recorded`_vs_baseline below a fraction while the usual volume is at least the minimum (a quiet
        hour stays silent); one rule per severity."""
        guard = guard or f"{recorded}_baseline >= {number(drop.minimum)}"
        levels: list[tuple[Severity, float]] = [("warning", drop.warning_ratio)]
        if drop.critical_ratio is not None:
            levels.append(("critical", drop.critical_ratio))
        return [
            Alert(
                name=name,
                expr=f"{recorded}_vs_baseline < {number(ratio)}\nand\n{guard}",
                for_=drop.pending_for,
                severity=severity,
                team="marketing",
                service=self.service,
                summary=summary,
                description=f"{what} is at {{{{ $value | humanizePercentage }}}} of its usual level at this time "
                f"of the week ({self.usual}): below {number(ratio * 100)} % for {drop.pending_for}.",
                dashboard="transactions" if name in ("OrdersDropping", "GmvDropping") else "behaviour",
            )
            for severity, ratio in levels
        ]

    # ------------------------------------------------------------------------------------------------ sales

    def sales(self) -> list[Rule]:
        s, window = self.settings, self.window
        orders = self.raw("business_orders_total")
        gmv_guard = per_label(
            lambda m: _selector(f"currency:business_gmv:increase{window}_baseline", m),
            ">=",
            "currency",
            s.gmv.minimum,
            s.gmv.minimum_by_currency,
        )
        return [
            self.record("currency:business_orders_per_minute:rate5m", f"sum by (currency) (rate({orders}[5m])) * 60"),
            self.record("service:business_orders_per_minute:rate5m", f"sum (rate({orders}[5m])) * 60"),
            self.record(
                "currency:business_orders:increase1h", self.increase("business_orders_total", "1h", "currency")("")
            ),
            *self.weekly(f"service:business_orders:increase{window}", self.increase("business_orders_total", window)),
            *self.weekly(
                f"currency:business_gmv:increase{window}", self.increase("business_gmv_total", window, "currency")
            ),
            self.record(
                "currency:business_transactions_completed_per_minute:rate5m",
                f"sum by (currency) (rate({self.raw('business_transactions_completed_total')}[5m])) * 60",
            ),
            self.record(
                "currency:business_transactions_completed_amount:increase1h",
                self.increase("business_transactions_completed_amount_total", "1h", "currency")(""),
            ),
            *self.dropping(
                "OrdersDropping",
                f"service:business_orders:increase{window}",
                s.orders,
                summary="Fewer orders than usual at this time of the week.",
                what=f"The number of orders placed in {self.last}",
            ),
            *self.dropping(
                "GmvDropping",
                f"currency:business_gmv:increase{window}",
                s.gmv,
                summary="Less GMV than usual at this time of the week.",
                what=f"The GMV of {self.last} in {{{{ $labels.currency }}}}",
                guard=gmv_guard,
            ),
        ]

    # ---------------------------------------------------------------------------------------------- traffic

    def traffic(self) -> list[Rule]:
        s, window = self.settings, self.window
        sessions = self.increase("business_sessions_total", window)
        orders = self.increase("business_orders_total", window)
        return [
            self.record(
                "service:business_sessions_per_minute:rate5m",
                f"sum (rate({self.raw('business_sessions_total')}[5m])) * 60",
            ),
            *self.weekly(f"service:business_sessions:increase{window}", sessions),
            *self.weekly("service:business_daily_active_users:sum", self.gauge("business_daily_active_users")),
            self.record("service:business_weekly_active_users:sum", self.gauge("business_weekly_active_users")("")),
            self.record("service:business_monthly_active_users:sum", self.gauge("business_monthly_active_users")("")),
            self.record(
                "service:business_stickiness:ratio",
                "service:business_daily_active_users:sum\n/\nservice:business_monthly_active_users:sum",
            ),
            # Conversion as orders per session over the window: it follows a broken checkout within the
            # window, where business_conversion_rate_ratio (sessions of the last 24 h) takes a day.
            *self.weekly(
                f"service:business_orders_per_session:ratio_increase{window}",
                self.ratio(orders, sessions),
                offset1w=False,
            ),
            *self.dropping(
                "SessionsDropping",
                f"service:business_sessions:increase{window}",
                s.sessions,
                summary="Fewer sessions than usual at this time of the week.",
                what=f"The number of sessions started in {self.last}",
            ),
            *self.dropping(
                "ActiveUsersDropping",
                "service:business_daily_active_users:sum",
                s.active_users,
                summary="Fewer daily active users than usual at this time of the week.",
                what="The number of users with a session in the last 24 hours",
            ),
            *self.dropping(
                "ConversionDropping",
                f"service:business_orders_per_session:ratio_increase{window}",
                s.conversion,
                summary="Fewer orders per session than usual at this time of the week.",
                what=f"Orders per session over {self.last}",
                guard=f"service:business_sessions:increase{window}_baseline >= {number(s.conversion.minimum)}",
            ),
        ]

    # ----------------------------------------------------------------------------------------------- funnel

    def funnel(self) -> list[Rule]:
        s = self.settings.funnel
        sums = "step_window:business_funnel_sessions:sum"

        def step_ratio(series: str) -> str:
            """Each step over the step before it, per window, with the earlier step in `previous_step`."""
            pairs = [
                f'label_replace(\n  {series}{{step="{step}"}}\n  / ignoring (step) group_left\n  '
                f'{series}{{step="{previous}"}},\n  "previous_step", "{previous}", "", ""\n)'
                for previous, step in itertools.pairwise(FUNNEL)
            ]
            return "\nor\n".join(pairs)

        return [
            self.record(sums, self.gauge("business_funnel_sessions", "step, window")("")),
            self.record(f"{sums}_baseline", self.baseline(self.gauge("business_funnel_sessions", "step, window"))),
            self.record("step_window:business_funnel_step:ratio", step_ratio(sums)),
            self.record("step_window:business_funnel_step:ratio_baseline", step_ratio(f"{sums}_baseline")),
            self.record(
                "step_window:business_funnel_step:ratio_vs_baseline",
                "step_window:business_funnel_step:ratio\n/\nstep_window:business_funnel_step:ratio_baseline",
            ),
            Alert(
                name="FunnelStepCollapsed",
                # The step before must have had enough sessions both now and usually for a ratio to mean
                # anything; the recorded counts carry `step`, renamed here to match `previous_step`.
                expr=(
                    f'step_window:business_funnel_step:ratio_vs_baseline{{window="1h"}} < {number(s.collapsed_ratio)}\n'
                    f"and on (previous_step, window)\n"
                    f'label_replace({sums}{{window="1h"}} >= {number(s.minimum_sessions)}, '
                    f'"previous_step", "$1", "step", "(.*)")\n'
                    f"and on (previous_step, window)\n"
                    f'label_replace({sums}_baseline{{window="1h"}} >= {number(s.minimum_sessions)}, '
                    f'"previous_step", "$1", "step", "(.*)")'
                ),
                for_=s.pending_for,
                severity="warning",
                team="marketing",
                service=self.service,
                summary="A step of the purchase funnel converts far less than usual.",
                description="Of the sessions of the last hour that reached {{ $labels.previous_step }}, the share "
                "that went on to {{ $labels.step }} is at {{ $value | humanizePercentage }} of its usual level at "
                f"this time of the week ({self.usual}): below {number(s.collapsed_ratio * 100)} % for "
                f"{s.pending_for}.",
                dashboard="behaviour",
            ),
        ]

    # --------------------------------------------------------------------------------------------- payments

    def spike(
        self, name: str, ratio: str, baseline: str, *, volume_guard: str, spike: SpikeSettings, summary: str, what: str
    ) -> list[Alert]:
        """`ratio` above the warning ratio and, when there is a baseline, above factor x baseline (the
        first week, the absolute threshold alone); critical above the critical ratio, baseline or not."""
        factor = number(spike.baseline_factor)
        warning = (
            f"{ratio} > {number(spike.warning_ratio)}\n"
            f"and\n(\n  {ratio} > {factor} * {baseline}\n  or\n  {ratio} unless {baseline}\n)\n"
            f"and\n{volume_guard}"
        )
        levels: list[tuple[Severity, str, str]] = [
            (
                "warning",
                warning,
                f"above {number(spike.warning_ratio * 100)} % for {spike.pending_for}, and above {factor} times its "
                f"usual level at this time of the week ({self.usual}) where that is known",
            )
        ]
        if spike.critical_ratio is not None:
            critical = f"{ratio} > {number(spike.critical_ratio)}\nand\n{volume_guard}"
            levels.append(
                ("critical", critical, f"above {number(spike.critical_ratio * 100)} % for {spike.pending_for}")
            )
        return [
            Alert(
                name=name,
                expr=expr,
                for_=spike.pending_for,
                severity=severity,
                team="customer-service",
                service=self.service,
                summary=summary,
                description=f"{what} has been {condition}: now {{{{ $value | humanizePercentage }}}}.",
                dashboard="transactions",
            )
            for severity, expr, condition in levels
        ]

    def payments(self) -> list[Rule]:
        s = self.settings
        attempts = "business_payment_attempts_total"
        failed_15m = self.increase(attempts, "15m", matchers='status="failed"')
        all_15m = self.increase(attempts, "15m")
        failure_ratio_1h = self.ratio(
            self.increase(attempts, "1h", matchers='status="failed"'), self.increase(attempts, "1h")
        )
        refunds_15m = self.increase("business_refunds_total", "15m")
        orders_15m = self.increase("business_orders_total", "15m")
        failed = self.raw(attempts, 'status="failed"')
        refund_ratio_1h = self.ratio(
            self.increase("business_refunds_total", "1h"), self.increase("business_orders_total", "1h")
        )
        return [
            self.record(
                "method:business_payment_failures:ratio_rate5m",
                f"sum by (method) (rate({failed}[5m]))\n/\nsum by (method) (rate({self.raw(attempts)}[5m]))",
            ),
            self.record(
                "service:business_payment_failures:ratio_rate5m",
                f"sum (rate({failed}[5m]))\n/\nsum (rate({self.raw(attempts)}[5m]))",
            ),
            self.record("service:business_payment_failures:ratio_rate15m", f"{failed_15m('')}\n/\n{all_15m('')}"),
            self.record(
                "service:business_payment_attempts_per_minute:rate15m", f"sum (rate({self.raw(attempts)}[15m])) * 60"
            ),
            self.record("service:business_payment_failures:ratio_rate1h_baseline", self.baseline(failure_ratio_1h)),
            self.record("service:business_refunds:increase15m", refunds_15m("")),
            self.record("service:business_refunds_per_order:ratio_rate15m", f"{refunds_15m('')}\n/\n{orders_15m('')}"),
            self.record("service:business_refunds_per_order:ratio_rate1h_baseline", self.baseline(refund_ratio_1h)),
            self.record(
                "currency:business_refunded_amount:increase1h",
                self.increase("business_refunded_amount_total", "1h", "currency")(""),
            ),
            *self.spike(
                "PaymentFailureRateHigh",
                "service:business_payment_failures:ratio_rate15m",
                "service:business_payment_failures:ratio_rate1h_baseline",
                volume_guard="service:business_payment_attempts_per_minute:rate15m >= "
                + number(s.payment_failures.minimum),
                spike=s.payment_failures,
                summary="Many more payment attempts fail than usual.",
                what="The share of failed payment attempts over the last 15 minutes",
            ),
            *self.spike(
                "RefundRateHigh",
                "service:business_refunds_per_order:ratio_rate15m",
                "service:business_refunds_per_order:ratio_rate1h_baseline",
                volume_guard=f"service:business_refunds:increase15m >= {number(s.refunds.minimum)}",
                spike=s.refunds,
                summary="Many more refunds and returns than usual.",
                what="Refunds and returns of the last 15 minutes per order placed in them",
            ),
        ]

    # ------------------------------------------------------------------------------------------------- data

    def data(self) -> list[Rule]:
        s = self.settings
        violations = self.raw("business_integrity_violations")
        stale = s.stale_tables

        def age(matcher: str) -> str:
            # 0 is an empty table (never written): reported by the comparison with > 0 dropping it.
            matchers = matcher
            return f"time() - ({self.raw('business_table_newest_row_timestamp_seconds', matchers)} > 0)"

        overrides = {table: seconds(limit) for table, limit in stale.max_age_by_table.items()}
        return [
            Alert(
                name="DataIntegrityViolations",
                expr=f"{violations}\n> min_over_time({violations}[{s.integrity_window}])",
                severity="warning",
                team="platform",
                service=self.service,
                summary="New rows break the marketplace's data-integrity rules.",
                description="Integrity check {{ $labels.check }} counts {{ $value }} rows, more than at some point "
                f"of the last {s.integrity_window}.",
                dashboard="transactions",
            ),
            Alert(
                name="BusinessTableStale",
                expr=per_label(age, ">", "table", seconds(stale.max_age), overrides),
                for_=stale.pending_for,
                severity="warning",
                team="platform",
                service=self.service,
                summary="A marketplace table has received no new rows for too long.",
                description="The newest row of table {{ $labels.table }} is {{ $value | humanizeDuration }} old "
                "(Pulse at {{ $labels.instance }}): whatever writes or syncs it may have stopped.",
                dashboard="transactions",
            ),
        ]


def build(settings: BusinessSettings, selectors: Selectors) -> list[Group]:
    rules = _Rules(settings, selectors)
    return [
        Group("business_sales", rules.sales()),
        Group("business_traffic", rules.traffic()),
        Group("business_funnel", rules.funnel()),
        Group("business_payments", rules.payments()),
        Group("business_data", rules.data()),
    ]


RULE_SET = RuleSet(
    name="business",
    title="The marketplace's business KPIs: recording rules and business alerts",
    settings=BusinessSettings,
    build=build,
)
