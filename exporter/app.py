"""The running exporter: its config, its collectors, reloads and scrapes.

A reload (SIGHUP or POST /-/reload) reads both config files again. Only when both are valid does it
swap anything in; otherwise the running config stays and the failure is logged, answered and exposed as
`pulse_exporter_config_last_reload_successful 0`. Any exception while loading is such a failure, not
only a ConfigError: a bug must never pass for a successful reload (or answer 500 with the metric at 1).
Collectors whose name and config section did not change are kept as they are, with their state
(counters, caches).
"""

from __future__ import annotations

import asyncio
import logging
import platform
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter import __version__
from exporter.collectors.base import BlockingCollector, Collector
from exporter.config.loader import ConfigError
from exporter.config.web import WebConfig, load_web_config
from exporter.exposition import Encoder
from exporter.registry import DEFAULT_CONFIG_NAME, PulseConfig, build_collectors, load_config
from exporter.scrape import Outcome, collect_all, unique_families

log = logging.getLogger(__name__)


class OwnProcessCollector(BlockingCollector):
    """The exporter's own CPU, memory, file descriptors and garbage collector (process_*, python_*)."""

    def __init__(self) -> None:
        super().__init__("exporter")
        private = CollectorRegistry()  # these register themselves somewhere; keep them out of the global one
        self._sources = (
            ProcessCollector(registry=private),
            PlatformCollector(registry=private),
            GCCollector(registry=private),
        )

    def collect_blocking(self) -> Sequence[Metric]:
        return [family for source in self._sources for family in source.collect()]


@dataclass(frozen=True)
class LoadedConfig:
    config: PulseConfig
    web: WebConfig
    ssl_context: ssl.SSLContext | None


def load_files(config_path: Path | None, web_config_path: Path | None) -> LoadedConfig:
    """Read and validate both config files; raises ConfigError naming file, line and field."""
    config = load_config(config_path)
    if web_config_path is None:
        return LoadedConfig(config, WebConfig(), None)
    web, context = load_web_config(web_config_path)
    return LoadedConfig(config, web, context)


def unexpected_load_error(config_name: str, err: Exception) -> str:
    """The report for an exception the loader should have turned into a ConfigError (a bug in Pulse):
    still a failed load, never a traceback or a reload taken for successful."""
    detail = str(err) if len(str(err)) <= 300 else str(err)[:300] + "..."
    return f"{config_name}: cannot load the config ({type(err).__name__}: {detail}); please report this as a bug"


def keep_unchanged(wanted: Sequence[Collector], previous: Sequence[Collector]) -> list[Collector]:
    """`wanted`, with each collector replaced by the one of `previous` whose name and config are the same."""
    result = []
    for collector in wanted:
        same = next((p for p in previous if p.name == collector.name and p.config == collector.config), None)
        result.append(same or collector)
    return result


class Exporter:
    def __init__(self, config_path: Path | None, web_config_path: Path | None, loaded: LoadedConfig) -> None:
        self.config_path = config_path
        self.web_config_path = web_config_path
        self.config = loaded.config
        self.web = loaded.web  # the web layer checks passwords against its users (web/auth.py)
        self.ssl_context = loaded.ssl_context
        self.collectors: list[Collector] = []
        self.own_process = OwnProcessCollector()
        self.ready = False
        self.reload_successful = True
        self.last_reload_success = time.time()
        self.last_outcomes: dict[str, Outcome] = {}
        self.encoder = Encoder()  # reuses the text of families returned unchanged (cached KPI results)
        # The HTTP server's own metrics (connections), set by whoever serves this exporter (cli.py).
        self.server_metrics: Callable[[], list[Metric]] = list
        self._reload_lock = asyncio.Lock()

    @property
    def config_name(self) -> str:
        return str(self.config_path) if self.config_path else DEFAULT_CONFIG_NAME

    async def start(self) -> None:
        await self._activate(build_collectors(self.config, self.config_path))
        self.ready = True
        log.info("collectors started", extra={"collectors": ",".join(c.name for c in self.collectors)})

    async def stop(self) -> None:
        self.ready = False
        await asyncio.gather(*(c.close() for c in self.collectors), return_exceptions=True)
        self.collectors = []

    async def reload(self) -> tuple[bool, str]:
        """Re-read the config files; on any error keep everything as it is. Returns (ok, message)."""
        async with self._reload_lock:
            try:
                loaded = await asyncio.to_thread(load_files, self.config_path, self.web_config_path)
                if (loaded.ssl_context is None) != (self.ssl_context is None):
                    raise ConfigError(
                        str(self.web_config_path),
                        [f"{self.web_config_path}: tls_server_config: turning TLS on or off needs a restart"],
                    )
                collectors = keep_unchanged(build_collectors(loaded.config, self.config_path), self.collectors)
            except ConfigError as err:
                return self._reload_failed(str(err))
            except Exception as err:  # a bug in loading must not pass for a successful reload
                log.debug("unexpected error while loading the config", exc_info=True)
                return self._reload_failed(unexpected_load_error(self.config_name, err))
            # A freshly built TLS context: new connections get the new certificate and client CAs
            # (a live context can gain trusted CAs but never lose one); open connections finish as they are.
            self.config, self.web, self.ssl_context = loaded.config, loaded.web, loaded.ssl_context
            await self._activate(collectors)
            self.reload_successful = True
            self.last_reload_success = time.time()
            log.info("config reloaded", extra={"config": self.config_name})
            return True, "config reloaded"

    def _reload_failed(self, message: str) -> tuple[bool, str]:
        self.reload_successful = False
        log.error("reload failed; the running config is kept", extra={"err": message})
        return False, f"reload failed; the running config is kept:\n{message}"

    async def _activate(self, collectors: list[Collector]) -> None:
        dropped = [c for c in self.collectors if not any(c is n for n in collectors)]
        started = [c for c in collectors if not any(c is o for o in self.collectors)]
        replaced = {c.name: c for c in dropped}
        for collector in started:
            await collector.start(replaced.get(collector.name))
        self.collectors = collectors
        await asyncio.gather(*(c.close() for c in dropped), return_exceptions=True)

    def select(self, names: list[str]) -> list[Collector]:
        """Collectors for `collect[]=` query parameters: exact names (host.cpu) or kinds (host)."""
        if not names:
            return self.collectors
        unknown = [n for n in names if not any(c.name == n or c.name.split(".")[0] == n for c in self.collectors)]
        if unknown:
            raise KeyError(", ".join(unknown))
        return [c for c in self.collectors if c.name in names or c.name.split(".")[0] in names]

    async def scrape(self, collectors: Sequence[Collector], timeout: float, accept: str) -> tuple[bytes, str]:
        outcomes = await collect_all([*collectors, self.own_process], timeout)
        for outcome in outcomes:
            self._log_change(self.last_outcomes.get(outcome.collector), outcome)
            self.last_outcomes[outcome.collector] = outcome
        guests = {c.name for c in collectors if c.guest}
        families: list[Metric] = [f for o in outcomes if o.collector not in guests for f in o.families]
        families.extend(self._self_metrics(outcomes))
        families.extend(f for o in outcomes if o.collector in guests for f in o.families)  # lose name clashes
        return self.encoder.encode_memoized(unique_families(families), accept)

    @staticmethod
    def _log_change(previous: Outcome | None, outcome: Outcome) -> None:
        """Log when a collector starts failing, fails differently, or recovers; not at every scrape,
        which for a collector broken for a day would be thousands of identical lines."""
        fields = {"collector": outcome.collector}
        if not outcome.success:
            if previous is None or previous.success or previous.error != outcome.error:
                log.warning("collector failed", extra={**fields, "err": outcome.error})
            else:
                log.debug("collector still failing", extra={**fields, "err": outcome.error})
        elif previous is not None and not previous.success:
            log.info("collector recovered", extra=fields)

    def _self_metrics(self, outcomes: Sequence[Outcome]) -> list[Metric]:
        build = GaugeMetricFamily(
            "pulse_exporter_build_info",
            "A metric with a constant '1' value labeled by version and Python version of the exporter.",
            labels=["version", "python_version", "python_implementation"],
        )
        build.add_metric([__version__, platform.python_version(), platform.python_implementation()], 1)
        duration = GaugeMetricFamily(
            "pulse_exporter_collector_duration_seconds",
            "How long each collector took in this scrape.",
            labels=["collector"],
        )
        success = GaugeMetricFamily(
            "pulse_exporter_collector_success",
            "Whether each collector succeeded in this scrape (1) or not (0).",
            labels=["collector"],
        )
        for outcome in outcomes:
            duration.add_metric([outcome.collector], outcome.seconds)
            success.add_metric([outcome.collector], 1 if outcome.success else 0)
        reload_ok = GaugeMetricFamily(
            "pulse_exporter_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            value=1 if self.reload_successful else 0,
        )
        reload_time = GaugeMetricFamily(
            "pulse_exporter_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload (or of the start).",
            value=self.last_reload_success,
        )
        return [build, duration, success, reload_ok, reload_time, *self.server_metrics()]
