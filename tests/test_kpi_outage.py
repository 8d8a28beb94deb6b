"""A database that goes away mid-run and comes back: the engine reports it, never crashes, recovers.

Each test starts its own private server (PostgreSQL with initdb + pg_ctl, MariaDB with
mariadb-install-db + mariadbd) on a free port in a temporary directory, so stopping it disturbs
nobody. The queries run on their real schedule here; the test polls what a scrape would show.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import pytest
import sqlalchemy

from exporter.exposition import encode_text
from exporter.kpis.config import KpisConfig
from exporter.kpis.engine import KpiCollector
from exporter.kpis.sources import sql as sql_source_module
from tests.helpers import StartExporter, free_port, parse_samples, unavailable, wait_until
from tests.kpi_harness import kpi_harness

if TYPE_CHECKING:
    from tests.databases import TestDatabase

pytest_plugins = ("tests.databases",)

pytestmark = pytest.mark.integration


class PrivateServer(Protocol):
    url: str  # the admin account: creates the tables
    reader_url: str  # an account that may only read: what the KPI source uses

    def stop(self) -> None: ...
    def start(self) -> None: ...


def _missing(what: str) -> NoReturn:
    unavailable(f"{what} (install postgresql / mariadb-server, or run ./scripts/test)")


def _as_user(user: str) -> dict[str, Any]:
    """Database servers refuse to run as root: subprocess arguments to run them as their own user."""
    return {"user": user, "group": user} if os.geteuid() == 0 else {}


class PrivatePostgres:
    def __init__(self, directory: Path) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            _missing("PostgreSQL's initdb is not installed")
        self.bin = Path(binaries[-1]).parent
        self.data = directory / "data"
        self.port = free_port()
        self.directory = directory
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
            **_as_user("postgres"),
        )
        self.start()
        self.reader_url = _reader(self.url, "postgresql")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.directory / "log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
            **_as_user("postgres"),
        )

    def stop(self) -> None:
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            check=True,
            capture_output=True,
            **_as_user("postgres"),
        )


class PrivateMariaDB:
    def __init__(self, directory: Path) -> None:
        install = shutil.which("mariadb-install-db")
        self.server = shutil.which("mariadbd") or (
            "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None
        )
        if install is None or self.server is None:
            _missing("mariadb-install-db / mariadbd are not installed")
        self.directory = directory
        self.port = free_port()
        self.url = f"mysql+pymysql://root@127.0.0.1:{self.port}/mysql"
        self.process: subprocess.Popen[bytes] | None = None
        subprocess.run(
            [install, "--no-defaults", f"--datadir={directory / 'data'}", "--auth-root-authentication-method=normal",
             "--skip-test-db"],
            check=True,
            capture_output=True,
            **_as_user("mysql"),
        )  # fmt: skip
        self.start()
        engine = sqlalchemy.create_engine(self.url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE DATABASE shop"))  # the reader reads it, not `mysql`
        engine.dispose()
        self.url = f"mysql+pymysql://root@127.0.0.1:{self.port}/shop"
        self.reader_url = _reader(self.url, "mysql")

    def start(self) -> None:
        assert self.server is not None
        command = [
            self.server, "--no-defaults", f"--datadir={self.directory / 'data'}", f"--port={self.port}",
            "--bind-address=127.0.0.1", f"--socket={self.directory / 'sock'}", f"--pid-file={self.directory / 'pid'}",
            "--skip-grant-tables=0", "--innodb-buffer-pool-size=16M", "--skip-log-bin",
        ]  # fmt: skip
        with (self.directory / "log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, **_as_user("mysql"))
        engine = sqlalchemy.create_engine(self.url, connect_args={"connect_timeout": 2})
        try:
            wait_until(lambda: self._answers(engine), 60, "mariadbd accepting connections", interval=0.2)
        finally:
            engine.dispose()

    def _answers(self, engine: sqlalchemy.Engine) -> bool:
        try:
            with engine.connect():
                return True
        except sqlalchemy.exc.OperationalError:
            if self.process is not None and self.process.poll() is not None:
                raise  # mariadbd has exited: its error, not a timeout
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)  # a crash, not a polite shutdown
            self.process.wait(30)
            self.process = None


def _reader(admin_url: str, dialect: str) -> str:
    from tests.databases import create_reader  # noqa: PLC0415 (a plugin module: imported at use)

    return create_reader(admin_url, dialect, "pulse_reader")


def _private_directory(owner: str) -> Iterator[Path]:
    # Not under pytest's tmp_path: that is only readable by root, and the servers run as their own user.
    directory = Path(tempfile.mkdtemp(prefix="pulse-outage-"))
    if os.geteuid() == 0:
        shutil.chown(directory, owner, owner)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    for directory in _private_directory("postgres"):
        server = PrivatePostgres(directory)
        try:
            yield server
        finally:
            subprocess.run(
                [str(server.bin / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "stop"],
                capture_output=True,
                check=False,
                **_as_user("postgres"),
            )


@pytest.fixture
def private_mariadb() -> Iterator[PrivateMariaDB]:
    for directory in _private_directory("mysql"):
        server = PrivateMariaDB(directory)
        try:
            yield server
        finally:
            server.stop()


def wait_for(condition: Callable[[], bool], what: str, runner: asyncio.Runner) -> None:
    """Let the engine's own tasks run until `condition` holds (a generous bound: this is not a speed test)."""
    wait_until(condition, 60, what, interval=0.05, sleep=lambda pause: runner.run(asyncio.sleep(pause)))


def outage_scenario(server: PrivateServer) -> None:
    engine = sqlalchemy.create_engine(server.url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)"))
        conn.execute(sqlalchemy.text("INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30)"))
    engine.dispose()
    config = KpisConfig.model_validate(
        {
            "sources": {"shop": {"dsn": server.reader_url, "connect_timeout": "2s"}},
            "queries": [
                {"name": "orders_open", "source": "shop", "interval": "200ms", "timeout": "200ms",
                 "sql": "SELECT COUNT(*) AS n FROM orders",
                 "metrics": [{"name": "shop_orders_open", "value": "n", "expire_after": "1h"}]},
                {"name": "order_amounts", "source": "shop", "interval": "200ms", "timeout": "200ms",
                 "sql": "SELECT SUM(amount) AS amount, MAX(id) AS last_id FROM orders WHERE id > :cursor",
                 "cursor": {"column": "last_id"},
                 "metrics": [{"name": "shop_order_amount", "type": "counter", "value": "amount"}]},
            ],
        }
    )  # fmt: skip
    collector = KpiCollector(config)
    with asyncio.Runner() as runner:

        def samples() -> dict[str, Any]:
            return parse_samples(encode_text(runner.run(collector.collect())).decode())

        runner.run(collector.start())
        try:
            wait_for(lambda: samples().get("shop_order_amount_total") == 60, "the first results", runner)
            assert samples()['pulse_kpi_source_up{source="shop"}'] == 1

            server.stop()
            wait_for(lambda: samples().get('pulse_kpi_source_up{source="shop"}') == 0, "source_up 0", runner)
            errors_during = samples()['pulse_kpi_queries_total{query="orders_open",status="error"}']
            wait_for(
                lambda: samples()['pulse_kpi_queries_total{query="orders_open",status="error"}'] > errors_during,
                "the queries keep running (and failing) while the database is down",
                runner,
            )
            during = samples()
            assert during['pulse_kpi_query_success{query="orders_open"}'] == 0
            assert during["shop_order_amount_total"] == 60  # a counter keeps its total through the outage

            server.start()
            with sqlalchemy.create_engine(server.url).begin() as conn:
                conn.execute(sqlalchemy.text("INSERT INTO orders VALUES (4, 40)"))
            wait_for(lambda: samples().get('pulse_kpi_source_up{source="shop"}') == 1, "source_up 1", runner)
            wait_for(lambda: samples().get("shop_order_amount_total") == 100, "the new row counted", runner)
            wait_for(lambda: samples().get("shop_orders_open") == 4, "fresh gauge values", runner)
            after = samples()
            assert after['pulse_kpi_query_success{query="orders_open"}'] == 1
            assert after['pulse_kpi_query_last_success_timestamp_seconds{query="orders_open"}'] > 0
        finally:
            runner.run(collector.close())


def test_postgresql_outage_and_recovery(private_postgres: PrivatePostgres) -> None:
    outage_scenario(private_postgres)


def test_mariadb_outage_and_recovery(private_mariadb: PrivateMariaDB) -> None:
    outage_scenario(private_mariadb)


def test_the_exporter_process_rides_out_a_database_outage(
    private_postgres: PrivatePostgres, start_exporter: StartExporter
) -> None:
    engine = sqlalchemy.create_engine(private_postgres.url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE orders (id INTEGER PRIMARY KEY)"))
        conn.execute(sqlalchemy.text("INSERT INTO orders VALUES (1), (2)"))
    engine.dispose()
    exporter = start_exporter(
        f"""\
kpis:
  sources:
    shop: {{dsn: "{private_postgres.reader_url}", connect_timeout: 2s}}
  queries:
    - name: orders
      source: shop
      interval: 200ms
      sql: SELECT COUNT(*) AS n FROM orders
      metrics: [{{name: shop_orders, value: n, expire_after: 1h}}]
"""
    )

    exporter.wait_for_samples(lambda s: s.get("shop_orders") == 2, "the first value", timeout=60)
    private_postgres.stop()
    exporter.wait_for_samples(lambda s: s.get('pulse_kpi_source_up{source="shop"}') == 0, "source_up 0", timeout=60)
    private_postgres.start()
    exporter.wait_for_samples(lambda s: s.get('pulse_kpi_source_up{source="shop"}') == 1, "source_up 1", timeout=60)
    exporter.wait_for_samples(
        lambda s: s.get('pulse_kpi_query_success{query="orders"}') == 1, "a successful run", timeout=60
    )
    assert exporter.process.poll() is None
    logs = exporter.logs()
    assert logs.count("KPI source is unreachable") == 1
    assert logs.count("KPI source is reachable again") == 1


class BlackholeProxy:
    """A TCP proxy on loopback that can stop forwarding while keeping connections open: a network
    partition, where neither side hears anything (no reset, no close)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.forwarding = threading.Event()
        self.forwarding.set()
        self._connections: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self.forwarding.wait()  # partitioned: hold the bytes, say nothing
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def heal(self) -> None:
        """End the partition: the held connections are reset (as after a real one), new ones flow."""
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()
        self._connections.clear()
        self.forwarding.set()

    def close(self) -> None:
        self._listener.close()
        self.heal()


def test_a_network_partition_never_hangs_the_engine(
    postgresql_database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_source_module, "THREAD_GRACE_SECONDS", 0.5)
    url = sqlalchemy.make_url(postgresql_database.reader_url)
    proxy = BlackholeProxy(url.port or 5432)
    dsn = url.set(port=proxy.port).render_as_string(hide_password=False)
    query = {"name": "ping", "source": "shop", "interval": "1h", "timeout": "500ms", "sql": "SELECT 1 AS n",
             "metrics": [{"name": "shop_ping", "value": "n"}]}  # fmt: skip
    try:
        with kpi_harness({"sources": {"shop": {"dsn": dsn}}, "queries": [query]}) as kpis:
            kpis.run()
            assert kpis.value("shop_ping") == 1

            proxy.forwarding.clear()
            kpis.run()  # the driver waits for an answer that never comes; the engine does not
            kpis.run()  # the stuck call is still pending: skipped, not piled up
            during = kpis.samples()
            assert during['pulse_kpi_queries_total{query="ping",status="timeout"}'] == 2
            assert during['pulse_kpi_source_up{source="shop"}'] == 0

            proxy.heal()

            def recovered() -> bool:
                if kpis.value('pulse_kpi_query_success{query="ping"}') == 1:
                    return True
                kpis.run()
                return False

            wait_until(recovered, 30, "recovery after the partition ended", interval=0.1)
            assert kpis.value('pulse_kpi_source_up{source="shop"}') == 1
    finally:
        proxy.close()
