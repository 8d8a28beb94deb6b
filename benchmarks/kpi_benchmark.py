"""KPI benchmark: the marketplace pack on a 1M-order database, and /metrics with KPIs cached.

Builds the marketplace schema with `--orders` orders (default 1,000,000; three sessions, two items and
1.1 payment attempts per order) in a private SQLite file, and in private PostgreSQL (127.0.0.1:5432) and
MariaDB (127.0.0.1:3306) databases when they answer; the server databases are dropped at the end. Then:

1. Pack refresh per database: every query of the pack once, wall time, as the first run after a start
   (cursor 0: the counters read the whole history) and as a steady run (cursors at the newest row).
2. Cached /metrics latency, p50 and p99, over a real pulse-exporter (host collectors off), once with the
   whole pack and once with 5 queries; and query-exporter with the same 5 queries, side by side, if
   `--query-exporter` (default /tmp/qe-venv/bin/query-exporter) exists. Both refresh hourly, so the
   scrapes read cached values. One keep-alive client scrapes them in turn with Prometheus' headers;
   besides latency (which includes this Python client's own overhead) each exporter's CPU time per
   scrape is measured from /proc: what a scrape costs the exporter itself.
3. Exporter RSS (VmRSS after the run, VmHWM peak), and what dominates it: the modules' import time
   (python -X importtime), the RSS growth each import causes, and how much of it is Python objects
   (tracemalloc) rather than native code and data (shared libraries, pydantic-core, OpenSSL).
4. Database executions while 1, then 4, scrapers hit /metrics without pause for `--period` seconds,
   with the pack refreshing every 5 s: the increase of sum(pulse_kpi_queries_total) in each phase.

    .venv/bin/python benchmarks/kpi_benchmark.py                      # a few minutes
    .venv/bin/python benchmarks/kpi_benchmark.py --orders 100000 --scrapes 500 --sqlite-only

Figures include this machine's noise (other processes share its CPUs); compare runs on one machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy
import yaml
from sqlalchemy.engine import Engine, make_url

from exporter.kpis.packs import PACKS
from exporter.kpis.packs import marketplace_schema as schema

HOST = "127.0.0.1"
POSTGRES_ADMIN_URL = os.environ.get("PULSE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("PULSE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql")
SCRAPE_HEADERS = {
    "Accept": "text/plain;version=0.0.4",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
STARTUP_TIMEOUT = 120.0  # the first run of the pack on a big database takes a while
LATENCY_TARGET_MS = 1.5
RSS_TARGET_MIB = 40.0
DAY = 86400
# The five queries the exporters are compared on (the pack's, their columns renamed to the metric names,
# since query-exporter names a value column after its metric).
COMPARED = {
    "marketplace_session_quality": {
        "avg_duration": "business_session_duration_average_seconds",
        "pages_per_session": "business_pages_per_session_average",
        "bounce_rate": "business_bounce_rate_ratio",
    },
    "marketplace_conversion": {"conversion_rate": "business_conversion_rate_ratio"},
    "marketplace_average_order_value": {"average_order_value": "business_average_order_value"},
    "marketplace_refund_rate": {"refund_rate": "business_refund_rate_ratio"},
    "marketplace_top_categories": {"orders": "business_category_orders"},
}


class BenchmarkError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------- the database


@dataclass(frozen=True)
class Sql:
    """Dialect pieces for generating rows with INSERT ... SELECT over a number sequence."""

    dialect: str

    def numbers(self, count: int) -> str:
        """A FROM clause yielding column i = 1..count."""
        if self.dialect == "sqlite":
            recursive = f"WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {count})"
            return f"({recursive} SELECT i FROM seq) n"
        if self.dialect == "postgresql":
            return f"generate_series(1::bigint, {count}::bigint) AS n(i)"
        return f"(SELECT seq AS i FROM seq_1_to_{count}) n"

    def div(self, a: str, b: str) -> str:
        return f"(({a}) DIV ({b}))" if self.dialect == "mysql" else f"(({a}) / ({b}))"

    def concat(self, a: str, b: str) -> str:
        return f"CONCAT({a}, {b})" if self.dialect == "mysql" else f"({a} || {b})"

    def ago_plus(self, days: int, seconds: str) -> str:
        """UTC now minus `days`, plus an integer number of seconds (an SQL expression)."""
        if self.dialect == "sqlite":
            return f"datetime('now', '-{days} days', '+' || ({seconds}) || ' seconds')"
        if self.dialect == "postgresql":
            return f"((now() AT TIME ZONE 'UTC') - interval '{days} days' + ({seconds}) * interval '1 second')"
        return f"(UTC_TIMESTAMP() - INTERVAL {days} DAY + INTERVAL ({seconds}) SECOND)"


def populate(engine: Engine, orders: int) -> dict[str, int]:
    """The schema with `orders` orders and proportional traffic over 30 days; returns rows per table."""
    sql = Sql(engine.dialect.name)
    users, sessions, items, payments, refunds = orders // 5, 3 * orders, 2 * orders, orders + orders // 10, orders // 16
    products = 5000
    span = 30 * DAY
    # Behaviour-flow events, one per step a session reached: 60% view, 25% cart, 10% checkout, 3.3% pay.
    funnel = (("product_viewed", "i % 5 < 3"), ("added_to_cart", "i % 4 = 0"), ("checkout_started", "i % 10 = 0"),
              ("paid", "i % 30 = 0"))  # fmt: skip

    def spread(count: int) -> str:  # the i-th of `count` rows, evenly over the 30 days
        return sql.div(f"i * {span}", str(count))

    statements = [
        f"""INSERT INTO users (id, created_at, country)
            SELECT i, {sql.ago_plus(400, sql.div(f"i * {370 * DAY}", str(users)))},
                   CASE i % 4 WHEN 0 THEN 'DE' WHEN 1 THEN 'FR' WHEN 2 THEN 'US' ELSE 'GB' END
            FROM {sql.numbers(users)}""",
        f"""INSERT INTO sessions (id, user_id, started_at, ended_at, landing_page, page_views)
            SELECT i, CASE WHEN i % 4 = 0 THEN NULL ELSE 1 + (i * 7919) % {users} END,
                   {sql.ago_plus(30, spread(sessions))}, {sql.ago_plus(30, f"{spread(sessions)} + i % 900")},
                   CASE i % 3 WHEN 0 THEN '/' WHEN 1 THEN '/search' ELSE '/product' END,
                   CASE WHEN i % 3 = 0 THEN 1 ELSE 2 + i % 6 END
            FROM {sql.numbers(sessions)}""",
        f"""INSERT INTO orders (id, customer_id, session_id, status, currency, amount, created_at)
            SELECT i, CASE WHEN i % 100000 = 0 THEN NULL ELSE 1 + (i * 31) % {users} END, 3 * i,
                   CASE WHEN i % 20 = 0 THEN 'cancelled' WHEN i % 17 = 0 THEN 'payment_failed'
                        WHEN i % 13 = 0 THEN 'pending' ELSE 'paid' END,
                   CASE i % 3 WHEN 0 THEN 'EUR' WHEN 1 THEN 'USD' ELSE 'GBP' END,
                   10 + ((i * 37) % 20000) / 100.0, {sql.ago_plus(30, spread(orders))}
            FROM {sql.numbers(orders)}""",
        f"""INSERT INTO order_items (id, order_id, product, category, quantity, price)
            SELECT i, 1 + {sql.div("i - 1", "2")}, {sql.concat("'p'", "i % 5000")},
                   {sql.concat("'cat_'", "(i * 13) % 40")}, 1 + i % 3, 5 + ((i * 17) % 10000) / 100.0
            FROM {sql.numbers(items)}""",
        f"""INSERT INTO payments (id, order_id, status, failure_reason, method, amount, created_at)
            SELECT i, CASE WHEN i % 200000 = 0 THEN NULL ELSE 1 + (i * 7) % {orders} END,
                   CASE WHEN i % 15 = 0 THEN 'failed' ELSE 'succeeded' END,
                   CASE WHEN i % 15 <> 0 THEN NULL WHEN i % 4 = 0 THEN 'card_declined'
                        WHEN i % 4 = 1 THEN 'insufficient_funds' WHEN i % 4 = 2 THEN 'expired_card'
                        ELSE 'processing_error' END,
                   CASE i % 3 WHEN 0 THEN 'card' WHEN 1 THEN 'paypal' ELSE 'bank_transfer' END,
                   20.00, {sql.ago_plus(30, spread(payments))}
            FROM {sql.numbers(payments)}""",
        f"""INSERT INTO products (id, sku, name, category)
            SELECT i, {sql.concat("'p'", "(i - 1)")}, {sql.concat("'Product '", "i")}, {sql.concat("'cat_'", "i % 40")}
            FROM {sql.numbers(products)}""",
        *(
            f"""INSERT INTO events (id, session_id, user_id, type, product_id, occurred_at)
            SELECT {step * sessions} + i, i, CASE WHEN i % 4 = 0 THEN NULL ELSE 1 + (i * 7919) % {users} END, '{kind}',
                   CASE WHEN {step} < 2 THEN 1 + (i * 13) % {products} END,
                   {sql.ago_plus(30, f"{spread(sessions)} + 30 * {step + 1}")}
            FROM {sql.numbers(sessions)} WHERE {condition}"""
            for step, (kind, condition) in enumerate(funnel)
        ),
        f"""INSERT INTO refunds (id, order_id, amount, kind, created_at)
            SELECT i, 16 * i, 5.00, CASE i % 2 WHEN 0 THEN 'refund' ELSE 'return' END,
                   {sql.ago_plus(30, spread(refunds))}
            FROM {sql.numbers(refunds)}""",
    ]
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        if sql.dialect == "postgresql":
            conn.execute(sqlalchemy.text("SET session_replication_role = replica"))  # no per-row FK triggers
        elif sql.dialect == "mysql":
            conn.execute(sqlalchemy.text("SET foreign_key_checks = 0"))
        for statement in statements:
            conn.execute(sqlalchemy.text(statement))
    with engine.begin() as conn:
        if sql.dialect in {"postgresql", "sqlite"}:
            conn.execute(sqlalchemy.text("ANALYZE"))
    events = sessions * 3 // 5 + sessions // 4 + sessions // 10 + sessions // 30
    return {"users": users, "sessions": sessions, "orders": orders, "order_items": items, "payments": payments,
            "refunds": refunds, "products": products, "events": events}  # fmt: skip


@contextlib.contextmanager
def private_database(dialect: str, directory: Path) -> Iterator[str | None]:
    """A SQLAlchemy URL of a new, empty database (None when its server does not answer); dropped after."""
    if dialect == "sqlite":
        yield f"sqlite:///{directory / 'bench.db'}"
        return
    admin_url = POSTGRES_ADMIN_URL if dialect == "postgresql" else MARIADB_ADMIN_URL
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"pulse_bench_{secrets.token_hex(4)}"
    quote = '"' if dialect == "postgresql" else "`"
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"CREATE DATABASE {quote}{name}{quote}"))
    except sqlalchemy.exc.SQLAlchemyError as err:
        print(f"{dialect}: not reachable ({str(err).splitlines()[0]}); skipped", file=sys.stderr)
        admin.dispose()
        yield None
        return
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if dialect == "postgresql":
                conn.execute(
                    sqlalchemy.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                    {"n": name},
                )
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}"))
        admin.dispose()


@dataclass
class Refresh:
    first_run_s: float
    steady_run_s: float
    slowest: list[tuple[str, float]]
    per_query: dict[str, float]


def time_pack(engine: Engine) -> Refresh:
    """Every query of the pack once with cursors at 0, then once more with the cursors they returned."""
    queries = PACKS["marketplace"]("bench", engine.dialect.name)
    cursors: dict[str, Any] = {}
    per_query: dict[str, float] = {}
    totals = []
    for phase in ("first", "steady"):
        total = 0.0
        for query in queries:
            params = {}
            if "cursor" in query:
                params["cursor"] = cursors.get(query["name"], query["cursor"]["initial"])
            with engine.connect() as conn:
                start = time.perf_counter()
                rows = conn.execute(sqlalchemy.text(query["sql"]), params).mappings().all()
                elapsed = time.perf_counter() - start
            total += elapsed
            if phase == "first":
                per_query[query["name"]] = elapsed
            if "cursor" in query:
                column = query["cursor"]["column"]
                cursors[query["name"]] = max(
                    (r[column] for r in rows if r[column] is not None), default=params["cursor"]
                )
        totals.append(total)
    slowest = sorted(per_query.items(), key=lambda kv: -kv[1])[:3]
    return Refresh(totals[0], totals[1], slowest, per_query)


# ------------------------------------------------------------------------------------- the exporters


@dataclass
class Exporter:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/metrics"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(name: str, command: list[str], directory: Path) -> Iterator[Exporter]:
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    log_path = directory / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=directory, start_new_session=True)  # fmt: skip
    exporter = Exporter(name, process, port, log_path)
    try:
        yield exporter
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def pulse_command(config: Path) -> list[str]:
    script = Path(sys.executable).parent / "pulse-exporter"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "exporter"]
    return [*base, f"--config.file={config}", f"--web.listen-address={HOST}:{{port}}", "--log.level=warn"]


def wait_ready(client: httpx.Client, exporter: Exporter, ready: Callable[[str], bool]) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if exporter.process.poll() is not None:
            raise BenchmarkError(f"{exporter.name} exited:\n{exporter.log_path.read_text(errors='replace')}")
        with contextlib.suppress(httpx.HTTPError):
            response = client.get(exporter.url, headers={"Accept": "text/plain"})
            if response.status_code == 200 and ready(response.text):
                return response.text
        time.sleep(0.2)
    raise BenchmarkError(f"{exporter.name} not ready within {STARTUP_TIMEOUT:.0f}s:\n{exporter.log_path.read_text()}")


def pulse_ready(query_names: Sequence[str]) -> Callable[[str], bool]:
    def ready(text: str) -> bool:
        return all(f'pulse_kpi_query_success{{query="{name}"}} 1' in text for name in query_names)

    return ready


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise BenchmarkError(f"/proc/{pid}/status has no {field}")


@dataclass
class Latency:
    exporter: str
    scrapes: int
    p50_ms: float
    p99_ms: float
    series: int
    rss_mib: float
    rss_peak_mib: float
    cpu_ms: float  # the exporter's own CPU time per scrape: its cost, without the client's overhead


def measure_latency(client: httpx.Client, exporters: Sequence[Exporter], scrapes: int) -> list[Latency]:
    """Scrape each exporter in turn (alternating who goes first), `scrapes` times each, after a warm-up."""
    samples: dict[str, list[float]] = {e.name: [] for e in exporters}
    for _ in range(50):
        for exporter in exporters:
            client.get(exporter.url, headers=SCRAPE_HEADERS)
    cpu_before = {e.name: cpu_seconds(e.process.pid) for e in exporters}
    for round_number in range(scrapes):
        for exporter in exporters if round_number % 2 == 0 else list(reversed(exporters)):
            start = time.perf_counter()
            with client.stream("GET", exporter.url, headers=SCRAPE_HEADERS) as response:
                for _chunk in response.iter_raw():
                    pass
            samples[exporter.name].append(time.perf_counter() - start)
            if response.status_code != 200:
                raise BenchmarkError(f"{exporter.name}: HTTP {response.status_code}")
    cpu = {e.name: (cpu_seconds(e.process.pid) - cpu_before[e.name]) / scrapes for e in exporters}
    results = []
    for exporter in exporters:
        text = client.get(exporter.url, headers={"Accept": "text/plain"}).text
        values = sorted(samples[exporter.name])
        results.append(
            Latency(
                exporter.name,
                len(values),
                statistics.median(values) * 1000,
                values[min(len(values) - 1, int(len(values) * 0.99))] * 1000,
                sum(1 for line in text.splitlines() if line and not line.startswith("#")),
                memory_mib(exporter.process.pid, "VmRSS"),
                memory_mib(exporter.process.pid, "VmHWM"),
                cpu[exporter.name] * 1000,
            )
        )
    return results


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compared_queries(dialect: str) -> list[dict[str, Any]]:
    """The 5 compared queries, columns renamed to their metric names (query-exporter's convention)."""
    result = []
    for query in PACKS["marketplace"]("shop", dialect):
        renames = COMPARED.get(query["name"])
        if renames is None:
            continue
        labels = sorted({label for metric in query["metrics"] for label in metric["labels"]})
        columns = [f"{column} AS {metric}" for column, metric in renames.items()] + labels
        sql = f"SELECT {', '.join(columns)} FROM ({query['sql']}) q"
        metrics = [{**m, "value": renames[m["value"]]} for m in query["metrics"]]
        result.append({**query, "sql": sql, "metrics": metrics, "interval": "1h", "timeout": "50s"})
    return result


def pulse_config(dsn: str, *, pack: bool, interval: str | None = None) -> dict[str, Any]:
    kpis: dict[str, Any] = {"sources": {"shop": {"dsn": dsn}}}
    if pack:
        entry: dict[str, Any] = {"pack": "marketplace", "source": "shop"}
        if interval:
            entry.update(interval=interval, timeout=interval)
        kpis["packs"] = [entry]
    else:
        kpis["queries"] = compared_queries(make_url(dsn).get_backend_name())
    return {"collectors": {"host": {"enabled": False}}, "kpis": kpis}


def query_exporter_config(dsn: str) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    queries: dict[str, Any] = {}
    for query in compared_queries(make_url(dsn).get_backend_name()):
        for metric in query["metrics"]:
            metrics[metric["name"]] = {"type": "gauge", "description": metric["help"]}
            if metric["labels"]:  # query-exporter refuses an empty list
                metrics[metric["name"]]["labels"] = metric["labels"]
        queries[query["name"]] = {
            "interval": 3600,
            "databases": ["shop"],
            "metrics": [m["name"] for m in query["metrics"]],
            "sql": query["sql"],
        }
    return {"databases": {"shop": {"dsn": dsn}}, "metrics": metrics, "queries": queries}


def executions(client: httpx.Client, exporter: Exporter) -> float:
    text = client.get(exporter.url, headers={"Accept": "text/plain"}).text
    return sum(float(m) for m in re.findall(r"^pulse_kpi_queries_total\{[^}]*\} (\S+)$", text, re.MULTILINE))


def scrapers_phase(exporter: Exporter, scrapers: int, period: float) -> tuple[float, int]:
    """`scrapers` threads scrape without pause for `period` s: (DB executions in that time, scrapes done)."""
    stop = threading.Event()
    done = [0] * scrapers

    def scrape(index: int) -> None:
        with httpx.Client(timeout=10) as own:
            while not stop.is_set():
                own.get(exporter.url, headers=SCRAPE_HEADERS)
                done[index] += 1

    with httpx.Client(timeout=10) as client:
        before = executions(client, exporter)
        threads = [threading.Thread(target=scrape, args=(i,)) for i in range(scrapers)]
        for thread in threads:
            thread.start()
        time.sleep(period)
        stop.set()
        for thread in threads:
            thread.join()
        return executions(client, exporter) - before, sum(done)


# ------------------------------------------------------------------------------------- what RSS is made of


IMPORTS = (
    "import exporter.cli, exporter.app, exporter.kpis.engine, exporter.kpis.sources.sql_database, "
    "exporter.kpis.sources.http, exporter.kpis.packs, sqlalchemy.dialects.sqlite"
)
# Imported one after the other in a fresh process; each is charged the RSS growth its import causes
# (including dependencies not imported before it), the exporter's own modules last.
IMPORT_STEPS = (
    "ssl", "asyncio", "pydantic", "sqlalchemy", "sqlalchemy.dialects.sqlite", "httpx", "prometheus_client",
    "cryptography.x509", "dns.resolver", "psutil", "croniter", "jmespath", "yaml",
    "exporter.cli", "exporter.app", "exporter.kpis.engine", "exporter.kpis.sources.sql_database",
    "exporter.kpis.sources.http", "exporter.kpis.packs",
)  # fmt: skip


def import_profile() -> tuple[list[tuple[str, float]], list[tuple[str, float]], tuple[float, float, float]]:
    """(packages by import self-time in ms, import steps by RSS growth in MiB, (RSS of a bare interpreter,
    RSS after importing what the exporter imports with KPIs configured, Python objects allocated by those
    imports according to tracemalloc), all MiB)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORTS], capture_output=True, text=True,
                            check=True)  # fmt: skip
    self_time: dict[str, float] = {}
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| \s*(\S+)", line)
        if match:
            package = match.group(2).split(".")[0]
            self_time[package] = self_time.get(package, 0) + int(match.group(1)) / 1000
    script = f"""
import importlib
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
print("base", rss())
for name in {list(IMPORT_STEPS)!r}:
    before = rss()
    importlib.import_module(name)
    print(name, rss() - before)
print("total", rss())
"""
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    growth: list[tuple[str, float]] = []
    base = total = 0.0
    for line in output.splitlines():
        name, kib = line.split()
        if name == "base":
            base = int(kib) / 1024
        elif name == "total":
            total = int(kib) / 1024
        else:
            growth.append((name, int(kib) / 1024))
    measure = f"import tracemalloc; tracemalloc.start(); {IMPORTS}; print(tracemalloc.get_traced_memory()[0])"
    traced = subprocess.run(
        [sys.executable, "-c", measure],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    times = sorted(self_time.items(), key=lambda kv: -kv[1])[:8]
    return times, sorted(growth, key=lambda kv: -kv[1])[:10], (base, total, int(traced) / 1048576)


# ------------------------------------------------------------------------------------- the run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=2000, help="measured scrapes per exporter (default 2000)")
    parser.add_argument("--period", type=float, default=20.0, help="seconds per scraper phase (default 20)")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL and MariaDB")
    parser.add_argument("--query-exporter", default="/tmp/qe-venv/bin/query-exporter")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, directory: Path) -> None:
    print(f"KPI benchmark: {args.orders:,} orders, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}\n")
    header = f"{'database':<12}{'build (s)':>10}{'pack, first run (s)':>21}{'pack, steady (s)':>18}"
    print(header + "  slowest queries (first run, s)")
    sqlite_url = ""
    with contextlib.ExitStack() as stack:
        for dialect in ("sqlite", "postgresql", "mysql"):
            if args.sqlite_only and dialect != "sqlite":
                continue
            url = stack.enter_context(private_database(dialect, directory))
            if url is None:
                continue
            engine = sqlalchemy.create_engine(url)
            start = time.perf_counter()
            populate(engine, args.orders)
            build = time.perf_counter() - start
            refresh = time_pack(engine)
            engine.dispose()
            slowest = ", ".join(
                f"{name.removeprefix('marketplace_')} {seconds:.2f}" for name, seconds in refresh.slowest
            )
            label = "mariadb" if dialect == "mysql" else dialect
            print(f"{label:<12}{build:>10.1f}{refresh.first_run_s:>21.2f}{refresh.steady_run_s:>18.2f}  {slowest}")
            every = ", ".join(f"{name.removeprefix('marketplace_')} {s:.2f}" for name, s in refresh.per_query.items())
            print(f"{'':<12}every query, first run (s): {every}")
            if dialect == "sqlite":
                sqlite_url = url
        print()
        latency_section(args, directory, sqlite_url)
        executions_section(args, directory, sqlite_url)
    times, growth, (base, total, traced) = import_profile()
    print(f"\nWhat the exporter's RSS is made of: a bare interpreter {base:.1f} MiB; after importing what the")
    print(f"exporter imports with KPIs configured (no data, no threads) {total:.1f} MiB, of which Python objects")
    print(f"(tracemalloc) {traced:.1f} MiB, the rest native code and data. RSS growth per import, MiB:")
    print("  " + ", ".join(f"{name} {mib:.1f}" for name, mib in growth))
    print("Import self-time per package (python -X importtime), ms: " + ", ".join(f"{p} {ms:.0f}" for p, ms in times))


def latency_section(args: argparse.Namespace, directory: Path, dsn: str) -> None:
    # Hourly refreshes: no query runs while the scrapes are measured, so they read cached values only.
    configs = {"pulse-pack": pulse_config(dsn, pack=True, interval="1h"), "pulse-5q": pulse_config(dsn, pack=False)}
    with contextlib.ExitStack() as stack, httpx.Client(timeout=30) as client:
        exporters = []
        for name, config in configs.items():
            path = directory / f"{name}.yml"
            path.write_text(yaml.safe_dump(config))
            exporter = stack.enter_context(running(name, pulse_command(path), directory))
            names = (
                [q["name"] for q in PACKS["marketplace"]("shop", "sqlite")] if name == "pulse-pack" else list(COMPARED)
            )
            wait_ready(client, exporter, pulse_ready(names))
            exporters.append(exporter)
        qe = Path(args.query_exporter)
        if qe.is_file():
            path = directory / "query-exporter.yml"
            path.write_text(yaml.safe_dump(query_exporter_config(dsn)))
            command = [str(qe), "--config", str(path), "-H", HOST, "-p", "{port}", "-L", "warning"]
            exporter = stack.enter_context(running("query-exporter", command, directory))
            wanted = [m for renames in COMPARED.values() for m in renames.values()]
            wait_ready(client, exporter, lambda text: all(f"\n{m}" in text for m in wanted))
            exporters.append(exporter)
        else:
            print(f"query-exporter not found at {qe}: comparison skipped (pip install query-exporter into a venv)")
        results = measure_latency(client, exporters, args.scrapes)
    print(f"Cached /metrics scrape ({args.scrapes} scrapes each, keep-alive, gzip, interleaved)")
    print(f"{'exporter':<16}{'p50 (ms)':>10}{'p99 (ms)':>10}{'CPU/scrape (ms)':>17}{'series':>8}"
          f"{'RSS (MiB)':>11}{'peak (MiB)':>12}")  # fmt: skip
    for r in results:
        print(
            f"{r.exporter:<16}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.cpu_ms:>17.2f}{r.series:>8}"
            f"{r.rss_mib:>11.1f}{r.rss_peak_mib:>12.1f}"
        )
    by_name = {r.exporter: r for r in results}
    pulse5, qe_result = by_name["pulse-5q"], by_name.get("query-exporter")
    if qe_result:
        print(f"pulse / query-exporter, 5 queries: p50 {pulse5.p50_ms / qe_result.p50_ms:.2f}x (target <= 0.5x), "
              f"CPU per scrape {pulse5.cpu_ms / qe_result.cpu_ms:.2f}x")  # fmt: skip
    pack = by_name["pulse-pack"]
    latency_met = "met" if pack.p50_ms <= LATENCY_TARGET_MS else "NOT MET"
    rss_met = "met" if pack.rss_mib <= RSS_TARGET_MIB else "NOT MET"
    print(f"targets: cached scrape <= {LATENCY_TARGET_MS} ms: {latency_met} (pack p50 {pack.p50_ms:.2f} ms); "
          f"RSS <= {RSS_TARGET_MIB:.0f} MiB: {rss_met} (pack {pack.rss_mib:.1f} MiB)\n")  # fmt: skip


def executions_section(args: argparse.Namespace, directory: Path, dsn: str) -> None:
    path = directory / "pulse-5s.yml"
    path.write_text(yaml.safe_dump(pulse_config(dsn, pack=True, interval="5s")))
    with running("pulse-5s", pulse_command(path), directory) as exporter, httpx.Client(timeout=30) as client:
        wait_ready(client, exporter, pulse_ready([q["name"] for q in PACKS["marketplace"]("shop", "sqlite")]))
        count = len(PACKS["marketplace"]("shop", "sqlite"))
        print(f"Database executions, whole pack every 5s, {args.period:.0f}s per phase ({count} queries: expect ~"
              f"{count * args.period / 5:.0f})")  # fmt: skip
        for scrapers in (1, 4):
            ran, scrapes = scrapers_phase(exporter, scrapers, args.period)
            print(f"  {scrapers} scraper(s): {scrapes:>6} scrapes, {ran:>4.0f} query executions")
        print(f"  exporter RSS after the phases: {memory_mib(exporter.process.pid, 'VmRSS'):.1f} MiB")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pulse-kpi-bench-") as directory:
        try:
            run(args, Path(directory))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except (BenchmarkError, httpx.HTTPError, sqlalchemy.exc.SQLAlchemyError) as err:
            print(f"benchmark failed: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
