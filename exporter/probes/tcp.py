"""The `tcp` prober, as blackbox_exporter's prober/tcp.go.

The target is "host:port" ("[v6addr]:port" for IPv6). The probe resolves the host (preferred IP
protocol, with fallback), connects (with TLS when `tls: true`), then works through `query_response`:
each `expect` regex is matched against the lines the server sends until one matches, `send` is written
with a newline (with `${1}`/`${name}` replaced by the match's groups) and `starttls` upgrades the
connection. An `expect` that no line matched before the server closed the connection fails the probe
with `probe_failed_due_to_regex 1`; one still waiting at the deadline fails it as a timeout.
"""

from __future__ import annotations

import asyncio
import re
import ssl

import pydantic

from exporter.config.tls import TLSClientConfig, client_ssl_context
from exporter.config.types import CompiledRegex, Regex, RegexMatch, StrictModel
from exporter.probes.base import FailureReason, Prober, ProbeSink, report_regex_failure
from exporter.probes.resolver import IPProtocol, ip_literal, resolve_for_probe, split_host_port
from exporter.probes.tls import report_tls, report_tls_failure, tls_failure

MAX_LINE_BYTES = 64 * 1024  # Go's bufio.Scanner limit, which blackbox's line matching inherits

_TEMPLATE_REFERENCE = re.compile(r"\$(?:(\$)|\{(\w+)\}|(\w+))")


def expand(template: str, match: RegexMatch) -> str:
    """Go's Regexp.Expand: `$1`, `${1}`, `$name`, `${name}` become the match's groups (empty when the
    group does not exist or did not take part), `$$` is a `$`; blackbox's `send` is written this way."""

    def group(reference: re.Match[str]) -> str:
        dollar, braced, bare = reference.groups()
        if dollar:
            return "$"
        name = braced or bare
        try:
            value = match.group(int(name) if name.isdigit() else name)
        except IndexError:  # no such group
            return ""
        return value or ""

    return _TEMPLATE_REFERENCE.sub(group, template)


class QueryResponse(StrictModel):
    expect: Regex | None = None
    send: str = ""
    starttls: bool = False


class TCPProbe(StrictModel):
    """blackbox_exporter 0.23's `tcp:` module options."""

    preferred_ip_protocol: IPProtocol = "ip6"
    ip_protocol_fallback: bool = True
    source_ip_address: str | None = None
    query_response: list[QueryResponse] = []
    tls: bool = False
    tls_config: TLSClientConfig = TLSClientConfig()

    @pydantic.field_validator("source_ip_address")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value is not None and ip_literal(value) is None:
            raise ValueError(f"{value!r} is not an IP address")
        return value


async def probe(target: str, config: TCPProbe, sink: ProbeSink) -> bool:
    report_regex_failure(sink, False)
    try:
        host, port = split_host_port(target)
    except ValueError as err:
        return sink.fail(FailureReason.CONNECTION_ERROR, str(err))
    resolved = await resolve_for_probe(host, config.preferred_ip_protocol, config.ip_protocol_fallback, sink)
    if resolved is None:
        return False
    ip = resolved.ip
    server_name = config.tls_config.server_name or host
    local_addr = (config.source_ip_address, 0) if config.source_ip_address else None
    sink.log(f"connecting to {ip} port {port}" + (" with TLS" if config.tls else ""))
    try:
        reader, writer = await asyncio.open_connection(
            ip,
            port,
            ssl=client_ssl_context(config.tls_config) if config.tls else None,
            server_hostname=server_name if config.tls else None,
            local_addr=local_addr,
            limit=MAX_LINE_BYTES,
        )
    except ssl.SSLError as err:
        return await report_tls_failure(
            sink, err, address=ip, port=port, server_hostname=server_name, config=config.tls_config
        )
    except ConnectionRefusedError as err:
        return sink.fail(FailureReason.CONNECTION_REFUSED, f"connecting to {ip} port {port}: {err.strerror or err}")
    except OSError as err:
        return sink.fail(FailureReason.CONNECTION_ERROR, f"connecting to {ip} port {port}: {err.strerror or err}")
    sink.log("connected")
    try:
        if config.tls:
            report_tls(sink, writer.get_extra_info("ssl_object"))
        return await _query_response(reader, writer, config, server_name, sink)
    finally:
        writer.close()


async def _query_response(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: TCPProbe, server_name: str, sink: ProbeSink
) -> bool:
    for index, step in enumerate(config.query_response):
        send = step.send
        try:
            if step.expect is not None:
                match = await _read_until_match(reader, step.expect, sink)
                if match is None:
                    report_regex_failure(sink, True)
                    return sink.fail(
                        FailureReason.QUERY_RESPONSE,
                        f"query_response[{index}]: no line matched {step.expect.pattern!r} "
                        "before the connection closed",
                    )
                send = expand(send, match)
            if send:
                sink.log(f"sending {send!r}")
                writer.write(send.encode() + b"\n")
                await writer.drain()
        except ValueError:  # asyncio's LimitOverrunError arrives as ValueError from readline()
            return sink.fail(
                FailureReason.PROTOCOL_ERROR, f"query_response[{index}]: a line longer than {MAX_LINE_BYTES} bytes"
            )
        except OSError as err:
            return sink.fail(FailureReason.CONNECTION_ERROR, f"query_response[{index}]: {err.strerror or err}")
        if step.starttls:
            sink.log("starting TLS")
            try:
                await writer.start_tls(client_ssl_context(config.tls_config), server_hostname=server_name)
            except ssl.SSLError as err:
                # No second handshake for the certificate here: it would have to replay the protocol.
                return sink.fail(*tls_failure(err))
            except OSError as err:
                return sink.fail(FailureReason.CONNECTION_ERROR, f"query_response[{index}]: {err.strerror or err}")
            report_tls(sink, writer.get_extra_info("ssl_object"))
            sink.log("TLS started")
    return True


async def _read_until_match(reader: asyncio.StreamReader, expect: CompiledRegex, sink: ProbeSink) -> RegexMatch | None:
    """Read lines until one matches `expect`; None at end of stream."""
    while True:
        raw = await reader.readline()
        if not raw:
            return None
        line = raw.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")
        match = expect.search(line)
        sink.log(f"read {line!r}" + (f": matches {expect.pattern!r}" if match else ""))
        if match:
            return match


PROBER = Prober("tcp", TCPProbe, probe)
