"""`pulse-exporter`: flags in the Prometheus exporters' style, each with a PULSE_* environment fallback.

Precedence: a flag on the command line, then its environment variable, then the default.
Exit codes: 0 clean stop or valid --config.check, 1 bad config or unusable listen address, 2 bad flags
(argparse's usage errors, e.g. --config.file given twice).

`pulse-exporter job run --name NAME -- COMMAND...` runs a cron job and records it as metrics for the
textfile collector (jobs.py); it exits with the command's exit code.
`pulse-exporter rules generate` writes prometheus/rules/ from prometheus/settings.yml (exporter/bundle/);
`pulse-exporter dashboards generate` writes grafana/dashboards/ (exporter/dashboards/).
`pulse-exporter slo generate SPEC...` prints the rules of Sloth-format SLO specs (docs/slos.md).
`pulse-exporter incidents list|show|ack|annotate|sync` reads and writes the incident journal (docs/incidents.md).
`pulse-exporter maintenance add|list|cancel` plans maintenance windows (exporter/status/maintenance.py).
`pulse-exporter report --period day|week|month` and `report incident ID` write reports (docs/report-files.md).
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
from typing import TYPE_CHECKING, Any

from exporter import __version__
from exporter.jobs import DEFAULT_DIRECTORY, EXIT_CANNOT_RUN, JobError, validate_name
from exporter.jobs import run as run_job
from exporter.logs import LEVELS
from exporter.logs import setup as setup_logging

# The exporter's own modules are imported when it starts, not here: `pulse-exporter job run` in a
# crontab then starts in a fraction of the time (it needs none of them).
if TYPE_CHECKING:
    from exporter.app import Exporter

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
    from exporter.web.server import MAX_CONNECTIONS  # noqa: PLC0415 - see the imports above

    parser = argparse.ArgumentParser(
        prog="pulse-exporter",
        description="Prometheus exporter for business platforms: host metrics, probes and business KPIs.",
        epilog="To run a cron job and record it as metrics: pulse-exporter job run --name NAME -- COMMAND... "
        "(see pulse-exporter job run --help). To generate the Prometheus rules from prometheus/settings.yml: "
        "pulse-exporter rules generate.",
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


def build_job_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulse-exporter job run",
        usage="pulse-exporter job run --name NAME [--textfile-directory DIR] [--timeout DURATION] -- COMMAND...",
        description="Run COMMAND and record its start, success, duration and exit code as metrics in "
        "<DIR>/pulse_job_<NAME>.prom for a textfile collector. Exits with COMMAND's exit code "
        "(75 when the previous run of NAME is still going).",
    )
    parser.add_argument("--name", required=True, help="the job's name: the job_name label and part of the file name")
    parser.add_argument(
        "--textfile-directory",
        default=_env("TEXTFILE_DIRECTORY", DEFAULT_DIRECTORY),
        help=f"where the metrics go. Default: {DEFAULT_DIRECTORY}. Env: PULSE_TEXTFILE_DIRECTORY",
    )
    parser.add_argument("--timeout", help="stop COMMAND after this long (30s, 2h, 1h30m): SIGTERM, then SIGKILL")
    return parser


def job_main(argv: list[str]) -> int:
    """`pulse-exporter job run ... -- COMMAND...` (jobs.py does the work)."""
    parser = build_job_parser()
    if not argv or argv[0] != "run":
        parser.error("the only job subcommand is `run`: pulse-exporter job run --name NAME -- COMMAND...")
    options, command = argv[1:], []
    if "--" in argv:
        split = argv.index("--")
        options, command = argv[1:split], argv[split + 1 :]
    args = parser.parse_args(options)
    if not command:
        parser.error("give the command to run after --, e.g. -- pg_dump -f /backup/shop.sql shop")
    timeout = None
    if args.timeout is not None:
        import pydantic  # noqa: PLC0415 - see the imports above

        from exporter.config.types import PositiveDuration  # noqa: PLC0415

        try:
            timeout = pydantic.TypeAdapter(PositiveDuration).validate_python(args.timeout)
        except pydantic.ValidationError as err:
            parser.error(f"--timeout {args.timeout!r}: {err.errors()[0]['msg']}")
    try:
        validate_name(args.name)
    except JobError as err:
        parser.error(str(err))
    try:
        return run_job(args.name, command, args.textfile_directory, timeout)
    except OSError as err:  # something no one foresaw: still a one-line message, and a failure for cron
        print(f"pulse-exporter job: {err}", file=sys.stderr)
        return EXIT_CANNOT_RUN


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["job"]:
        return job_main(arguments[1:])
    if arguments[:1] == ["dashboards"]:
        from exporter.dashboards.generate import main as dashboards_main  # noqa: PLC0415 - see the imports above

        return dashboards_main(arguments[1:])
    if arguments[:1] == ["rules"]:
        from exporter.bundle.command import main as rules_main  # noqa: PLC0415 - see the imports above

        return rules_main(arguments[1:])
    if arguments[:1] == ["incidents"]:
        from exporter.incidents.cli import main as incidents_main  # noqa: PLC0415 - see the imports above
        from exporter.registry import load_config  # noqa: PLC0415

        return incidents_main(arguments[1:], load_config)
    if arguments[:1] == ["maintenance"]:
        from exporter.registry import load_config  # noqa: PLC0415 - see the imports above
        from exporter.status.maintenance import main as maintenance_main  # noqa: PLC0415

        return maintenance_main(arguments[1:], load_config)
    if arguments[:1] == ["report"]:
        from exporter.registry import load_config  # noqa: PLC0415 - see the imports above
        from exporter.reports.cli import main as report_main  # noqa: PLC0415

        return report_main(arguments[1:], load_config)
    if arguments[:1] == ["slo"]:
        from exporter.bundle.command import slo_main  # noqa: PLC0415 - see the imports above

        return slo_main(arguments[1:])
    from exporter.app import Exporter, load_files, unexpected_load_error  # noqa: PLC0415 - see the imports above
    from exporter.config.loader import ConfigError  # noqa: PLC0415
    from exporter.web.server import parse_listen_address  # noqa: PLC0415

    parser = build_parser()
    args = parser.parse_args(arguments)
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
    from exporter.web.routes import Routes  # noqa: PLC0415 - see the imports above
    from exporter.web.server import HttpServer  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    routes = Routes(exporter, max_requests)
    server = HttpServer(
        routes, tls=lambda: exporter.ssl_context, max_connections=max_connections, body_limit=routes.body_limit
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
