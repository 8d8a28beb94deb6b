"""The `dns` prober: one query to a DNS server, checked like blackbox_exporter's prober/dns.go.

The target is the server, "host[:port]" (port 53, or 853 with dns_over_tls); `query_name` is what is
asked. Records are matched by the validate_*_rrs regular expressions in miekg/dns's text form
("name<TAB>ttl<TAB>class<TAB>type<TAB>rdata"), the form blackbox users wrote their expressions for.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import dns.exception
import dns.flags
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pydantic

from exporter.config.tls import TLSClientConfig, client_ssl_context
from exporter.config.types import Regex, StrictModel
from exporter.probes.base import FailureReason, PhaseDurations, Prober, ProbeSink, broken_regex
from exporter.probes.resolver import IPProtocol, ResolvedHost, resolve_for_probe, split_host_port
from exporter.probes.tls import report_tls_failure

if TYPE_CHECKING:  # dnspython's query machinery is imported by the first probe: configs without dns save 1.6 MiB
    import dns.message
    import dns.rrset


class RRValidator(StrictModel):
    """Checks over one section's records; an empty validator accepts anything."""

    fail_if_matches_regexp: list[Regex] = []  # any record matches any of them
    fail_if_all_match_regexp: list[Regex] = []  # as blackbox implements it: a record misses one of them
    fail_if_not_matches_regexp: list[Regex] = []  # some record misses one of them (or no records)
    fail_if_none_matches_regexp: list[Regex] = []  # no record matches one of them (or no records)


class DNSProbe(StrictModel):
    query_name: str
    query_type: str = "ANY"
    query_class: str = "IN"
    transport_protocol: Literal["udp", "tcp"] | None = None  # udp, or tcp with dns_over_tls
    preferred_ip_protocol: IPProtocol = "ip6"
    ip_protocol_fallback: bool = True
    source_ip_address: str | None = None
    recursion_desired: bool = True
    dns_over_tls: bool = False
    tls_config: TLSClientConfig = TLSClientConfig()
    valid_rcodes: list[str] = ["NOERROR"]
    validate_answer_rrs: RRValidator = RRValidator()
    validate_authority_rrs: RRValidator = RRValidator()
    validate_additional_rrs: RRValidator = RRValidator()

    @pydantic.field_validator("query_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query_name must be set for a dns module")
        try:
            dns.name.from_text(value)
        except dns.exception.DNSException as err:
            raise ValueError(f"not a valid DNS name: {value!r} ({err})") from None
        return value

    @pydantic.field_validator("query_type")
    @classmethod
    def _type(cls, value: str) -> str:
        return _known(
            dns.rdatatype.from_text, value, f"unknown DNS query type {value!r} (e.g. A, AAAA, MX, SOA, TXT, ANY)"
        )

    @pydantic.field_validator("query_class")
    @classmethod
    def _class(cls, value: str) -> str:
        return _known(dns.rdataclass.from_text, value, f"unknown DNS query class {value!r} (IN, CH, HS, ANY)")

    @pydantic.field_validator("valid_rcodes")
    @classmethod
    def _rcodes(cls, values: list[str]) -> list[str]:
        return [
            _known(dns.rcode.from_text, value, f"unknown DNS rcode {value!r} (e.g. NOERROR, NXDOMAIN, SERVFAIL)")
            for value in values
        ]

    @pydantic.field_validator("source_ip_address")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"not an IP address: {value!r}") from None
        return value

    @pydantic.model_validator(mode="after")
    def _tls_needs_tcp(self) -> DNSProbe:
        if self.dns_over_tls and self.transport_protocol == "udp":
            raise ValueError("dns_over_tls works over tcp only: set transport_protocol: tcp (or leave it out)")
        return self

    @property
    def transport(self) -> Literal["udp", "tcp"]:
        return self.transport_protocol or ("tcp" if self.dns_over_tls else "udp")


def _known(parse: Callable[[str], object], value: str, problem: str) -> str:
    """`value` in upper case if dnspython knows it (a type, class or rcode name); ValueError(problem) if not."""
    try:
        parse(value.upper())
    except dns.exception.DNSException:
        raise ValueError(problem) from None
    return value.upper()


# ---- the probe ----


def rr_texts(section: list[dns.rrset.RRset]) -> list[str]:
    """One line per record, in miekg/dns's RR.String() layout (tab-separated header fields)."""
    lines: list[str] = []
    for rrset in section:
        header = (
            f"{rrset.name.to_text()}\t{rrset.ttl}\t{dns.rdataclass.to_text(rrset.rdclass)}\t"
            f"{dns.rdatatype.to_text(rrset.rdtype)}\t"
        )
        lines.extend(header + rdata.to_text() for rdata in rrset)
    return lines


def check_records(records: list[str], validator: RRValidator) -> str | None:
    """The first broken rule as a readable sentence, or None; the rules of blackbox's validRRs."""
    if not records and validator.fail_if_not_matches_regexp:
        return "fail_if_not_matches_regexp is set but there are no records"
    if not records and validator.fail_if_none_matches_regexp:
        return "fail_if_none_matches_regexp is set but there are no records"
    for record in records:
        broken = broken_regex(record, validator.fail_if_matches_regexp, validator.fail_if_not_matches_regexp)
        if broken is not None:
            pattern, matched = broken
            if matched:
                return f"record {record!r} matches fail_if_matches_regexp {pattern.pattern!r}"
            return f"record {record!r} does not match fail_if_not_matches_regexp {pattern.pattern!r}"
    # Despite its name, blackbox (0.23, and its source today) fails this rule when a record does NOT match every
    # pattern (no records: passes). Pulse does what blackbox does, so migrated modules keep their meaning.
    for record in records:
        for pattern in validator.fail_if_all_match_regexp:
            if not pattern.search(record):
                return f"record {record!r} does not match fail_if_all_match_regexp {pattern.pattern!r}"
    patterns = validator.fail_if_none_matches_regexp
    if patterns and not any(pattern.search(record) for record in records for pattern in patterns):
        return "no record matches fail_if_none_matches_regexp " + ", ".join(repr(p.pattern) for p in patterns)
    return None


def _classify(err: BaseException) -> tuple[FailureReason, str]:
    if isinstance(err, ConnectionRefusedError):
        return FailureReason.CONNECTION_REFUSED, "connection refused (nothing listens on the server's DNS port)"
    if isinstance(err, dns.exception.Timeout | TimeoutError):
        return FailureReason.TIMEOUT, "no answer before the deadline"
    if isinstance(err, EOFError):
        return FailureReason.CONNECTION_ERROR, "the server closed the connection before answering"
    if isinstance(err, dns.exception.DNSException | ValueError):
        return FailureReason.PROTOCOL_ERROR, f"not a valid DNS answer: {err or type(err).__name__}"
    if isinstance(err, OSError):
        return FailureReason.CONNECTION_ERROR, f"{type(err).__name__}: {err.strerror or err}"
    raise err


async def _exchange(
    query: dns.message.Message, server: ResolvedHost, port: int, config: DNSProbe, phases: PhaseDurations
) -> dns.message.Message:
    """Connect (a UDP socket, or a TCP/TLS connection) and ask; the two phases are timed apart."""
    import dns.asyncbackend  # noqa: PLC0415
    import dns.asyncquery  # noqa: PLC0415

    backend = dns.asyncbackend.get_backend("asyncio")
    # A connected socket, also for UDP, so an ICMP port-unreachable comes back as "connection refused".
    destination = (server.ip, port)
    source = (config.source_ip_address, 0) if config.source_ip_address else None
    tls = client_ssl_context(config.tls_config) if config.dns_over_tls else None
    started = time.perf_counter()
    socktype = socket.SOCK_DGRAM if config.transport == "udp" else socket.SOCK_STREAM
    server_name = (config.tls_config.server_name or server.host) if tls else None
    sock: Any = await backend.make_socket(  # type: ignore[no-untyped-call]
        server.family, socktype, 0, source, destination, None, tls, server_name
    )
    try:
        phases.add("connect", time.perf_counter() - started)
        with phases.timing("request"):
            if config.transport == "udp":
                return await dns.asyncquery.udp(query, server.ip, port=port, sock=sock)
            if config.dns_over_tls:
                return await dns.asyncquery.tls(query, server.ip, port=port, sock=sock)
            return await dns.asyncquery.tcp(query, server.ip, port=port, sock=sock)
    finally:
        await sock.close()


def _report_counts(sink: ProbeSink, counts: dict[str, int]) -> None:
    for section, count in counts.items():
        sink.gauge(
            f"probe_dns_{section}_rrs", f"Returns number of entries in the {section} resource record list", float(count)
        )


def _report_query_succeeded(sink: ProbeSink, succeeded: bool) -> None:
    sink.gauge(
        "probe_dns_query_succeeded", "Displays whether or not the query was executed successfully", float(succeeded)
    )


async def probe(target: str, config: DNSProbe, sink: ProbeSink) -> bool:
    # Every series from the start, so a probe cut at its deadline reports them all, as blackbox does.
    phases = sink.phases(
        "probe_dns_duration_seconds", "Duration of DNS request by phase", ("resolve", "connect", "request")
    )
    _report_counts(sink, {"answer": 0, "authority": 0, "additional": 0})
    _report_query_succeeded(sink, False)
    try:
        host, port = split_host_port(target, 853 if config.dns_over_tls else 53)
    except ValueError as err:
        return sink.fail(FailureReason.DNS_ERROR, str(err))
    server = await resolve_for_probe(host, config.preferred_ip_protocol, config.ip_protocol_fallback, sink)
    if server is None:
        return False
    phases.add("resolve", server.lookup_seconds)

    import dns.message  # noqa: PLC0415

    qtype = dns.rdatatype.from_text(config.query_type)
    query = dns.message.make_query(config.query_name, qtype, dns.rdataclass.from_text(config.query_class))
    if not config.recursion_desired:
        query.flags &= ~dns.flags.RD
    transport = config.transport + ("+tls" if config.dns_over_tls else "")
    sink.log(
        f"asking {server.ip}:{port} over {transport}: {config.query_name} {config.query_class} {config.query_type}"
    )
    try:
        response = await _exchange(query, server, port, config, phases)
    except ssl.SSLError as err:  # DNS over TLS: the leaf's validity is reported also when it failed
        name = config.tls_config.server_name or host
        return await report_tls_failure(
            sink, err, address=server.ip, port=port, server_hostname=name, config=config.tls_config
        )
    except Exception as err:  # a transport failure becomes a reason; _classify re-raises anything else
        reason, detail = _classify(err)
        return sink.fail(reason, detail)

    sections = {"answer": response.answer, "authority": response.authority, "additional": response.additional}
    texts = {name: rr_texts(section) for name, section in sections.items()}
    _report_counts(sink, {name: len(lines) for name, lines in texts.items()})
    _report_query_succeeded(sink, True)
    rcode = dns.rcode.to_text(response.rcode())
    sink.log(f"answer: rcode {rcode}, " + ", ".join(f"{len(v)} {k}" for k, v in texts.items()))
    for name, lines in texts.items():
        for line in lines:
            sink.log(f"  {name}: {line}")

    if qtype == dns.rdatatype.SOA:
        serials = [rdata.serial for rrset in response.answer if rrset.rdtype == dns.rdatatype.SOA for rdata in rrset]
        sink.gauge("probe_dns_serial", "Returns the serial number of the zone", float(serials[-1] if serials else 0))

    if rcode not in config.valid_rcodes:
        return sink.fail(FailureReason.DNS_RCODE, f"rcode {rcode} is not one of valid_rcodes {config.valid_rcodes}")
    validators = {
        "answer": config.validate_answer_rrs,
        "authority": config.validate_authority_rrs,
        "additional": config.validate_additional_rrs,
    }
    for name, validator in validators.items():
        problem = check_records(texts[name], validator)
        if problem is not None:
            return sink.fail(FailureReason.DNS_RECORDS, f"validate_{name}_rrs: {problem}")
    return True


PROBER = Prober("dns", DNSProbe, probe)
