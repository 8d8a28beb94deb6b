"""`pulse-exporter`: flags in the Prometheus exporters' style, each with a PULSE_* environment fallback.

Precedence: a flag on the command line, then its environment variable, then the default.
Exit codes: 0 clean stop or valid --config.check, 1 bad config or unusable listen address, 2 bad flags
(argparse's usage errors, e.g. --config.file given twice).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from exporter import __version__
from exporter.app import Exporter, load_files, unexpected_load_error
from exporter.config.loader import ConfigError
from exporter.logs import LEVELS
from exporter.logs import setup as setup_logging
from exporter.web.routes import Routes
from exporter.web.server import MAX_CONNECTIONS, HttpServer, parse_listen_address

# 9100-9999, the range of the Prometheus default-port allocations, has been fully taken since 2023;
# 10135 is outside it and not registered in /etc/services. Change it with --web.listen-address.
DEFAULT_LISTEN_ADDRESS = ":10135"

log = logging.getLogger("exporter")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"PULSE_{name}", default)


def _limit(text: str) -> int:
    """A limit flag: a whole number, 0 meaning none (a negative number would silently mean none too)."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


class _GivenOnce(argparse.Action):
    """A config file flag: given twice, the first file would be silently ignored, so it is an error."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        seen = f"_{self.dest}_given"
        if getattr(namespace, seen, False):
            parser.error(f"{option_string} given more than once; Pulse reads one file (files are not merged)")
        setattr(namespace, seen, True)
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulse-exporter",
        description="Prometheus exporter for business platforms: host metrics, probes and business KPIs.",
    )
    add = parser.add_argument
    add(
        "--config.file",
        dest="config_file",
        action=_GivenOnce,
        default=_env("CONFIG_FILE"),
        help="Pulse config file (YAML); one file, given once (files are not merged). "
        "Default: the embedded default config. Env: PULSE_CONFIG_FILE",
    )
    add(
        "--config.check",
        dest="config_check",
        action="store_true",
        default=_env("CONFIG_CHECK", "") in ("1", "true"),
        help="Validate the config files, print the result and exit (0 valid, 1 invalid).",
    )
    add(
        "--web.listen-address",
        dest="listen_addresses",
        action="append",
        default=None,
        help=f"Address to listen on; repeat for several. Default: {DEFAULT_LISTEN_ADDRESS}. "
        "Env: PULSE_WEB_LISTEN_ADDRESS (comma-separated)",
    )
    add(
        "--web.config.file",
        dest="web_config_file",
        action=_GivenOnce,
        default=_env("WEB_CONFIG_FILE"),
        help="exporter-toolkit web config for TLS and basic auth; given once. Env: PULSE_WEB_CONFIG_FILE",
    )
    add(
        "--web.max-requests",
        dest="max_requests",
        type=_limit,
        default=_env("WEB_MAX_REQUESTS", "40"),  # a string default goes through `type` too
        help="Maximum concurrent scrapes of /metrics; 0 for no limit. Env: PULSE_WEB_MAX_REQUESTS",
    )
    add(
        "--web.max-connections",
        dest="max_connections",
        type=_limit,
        default=_env("WEB_MAX_CONNECTIONS", str(MAX_CONNECTIONS)),  # a string default goes through `type` too
        help="Maximum open HTTP connections; above it a new connection closes the longest-idle keep-alive one, "
        f"or is itself closed when none is idle. 0 for no limit. Default: {MAX_CONNECTIONS}. "
        "Env: PULSE_WEB_MAX_CONNECTIONS",
    )
    add(
        "--log.level",
        dest="log_level",
        choices=sorted(LEVELS),
        default=_env("LOG_LEVEL", "info"),
        help="Only log messages with this severity or above. Env: PULSE_LOG_LEVEL",
    )
    add(
        "--log.format",
        dest="log_format",
        choices=["logfmt", "json"],
        default=_env("LOG_FORMAT", "logfmt"),
        help="Log format. Env: PULSE_LOG_FORMAT",
    )
    add(
        "--version",
        action="version",
        version=f"pulse-exporter, version {__version__} (Python {platform.python_version()})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level not in LEVELS or args.log_format not in ("logfmt", "json"):
        parser.error("PULSE_LOG_LEVEL / PULSE_LOG_FORMAT has a value that is not allowed")
    setup_logging(args.log_level, args.log_format)
    config_path = Path(args.config_file) if args.config_file else None
    web_config_path = Path(args.web_config_file) if args.web_config_file else None

    addresses = args.listen_addresses or (_env("WEB_LISTEN_ADDRESS") or DEFAULT_LISTEN_ADDRESS).split(",")
    try:
        listen = [parse_listen_address(a.strip()) for a in addresses]
    except ValueError as err:
        print(f"pulse-exporter: {err}", file=sys.stderr)
        return 1
    try:
        loaded = load_files(config_path, web_config_path)
    except ConfigError as err:
        print(f"pulse-exporter: invalid configuration:\n{err}", file=sys.stderr)
        return 1
    except Exception as err:  # a bug in loading still fails, without a traceback
        log.debug("unexpected error while loading the config", exc_info=True)
        name = str(config_path or "embedded default config")
        print(f"pulse-exporter: invalid configuration:\n{unexpected_load_error(name, err)}", file=sys.stderr)
        return 1
    if args.config_check:
        checked = [str(config_path or "embedded default config")] + ([str(web_config_path)] if web_config_path else [])
        print(f"pulse-exporter: configuration valid: {', '.join(checked)}")
        return 0

    exporter = Exporter(config_path, web_config_path, loaded)
    try:
        return asyncio.run(_serve(exporter, listen, args.max_requests, args.max_connections))
    except KeyboardInterrupt:
        return 0


async def _serve(
    exporter: Exporter, listen: list[tuple[str | None, int]], max_requests: int, max_connections: int
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    server = HttpServer(
        Routes(exporter, max_requests), tls=lambda: exporter.ssl_context, max_connections=max_connections
    )
    exporter.server_metrics = server.stats.metrics
    await exporter.start()
    try:
        for host, port in listen:
            for bound_host, bound_port in await server.listen(host, port):
                log.info(
                    "listening",
                    extra={"address": f"{bound_host}:{bound_port}", "tls": exporter.ssl_context is not None},
                )
    except OSError as err:
        log.error("cannot listen", extra={"err": str(err)})
        print(f"pulse-exporter: cannot listen: {err}", file=sys.stderr)
        await exporter.stop()
        return 1

    reloads: set[asyncio.Task[tuple[bool, str]]] = set()

    def on_sighup() -> None:
        task = loop.create_task(exporter.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("pulse-exporter started", extra={"version": __version__, "config": exporter.config_name})
    await stop.wait()
    log.info("stopping")
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)
    await server.close()
    await exporter.stop()
    return 0
