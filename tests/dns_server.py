"""A real DNS server for the tests: UDP and TCP on one loopback port, answering from a small zone.

Built with dnspython's message API. Besides authoritative answers it has names that misbehave on purpose:

    servfail.<origin>   answers SERVFAIL          refused.<origin>   answers REFUSED
    silent.<origin>     never answers             garbage.<origin>   answers bytes that are no DNS message
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

EXAMPLE_ZONE = """
example.test.        3600 IN SOA   ns1.example.test. hostmaster.example.test. 2024031501 7200 3600 1209600 300
example.test.        3600 IN NS    ns1.example.test.
example.test.        300  IN A     192.0.2.10
example.test.        300  IN MX    10 mail.example.test.
example.test.        300  IN TXT   "v=spf1 mx -all"
www.example.test.    300  IN A     192.0.2.20
www.example.test.    300  IN A     192.0.2.21
www.example.test.    300  IN AAAA  2001:db8::20
mail.example.test.   300  IN A     192.0.2.30
ns1.example.test.    300  IN A     192.0.2.53
"""


class Zone:
    def __init__(self, text: str) -> None:
        self.records: list[dns.rrset.RRset] = []
        for line in text.strip().splitlines():
            name, ttl, rdclass, rdtype, rdata = line.split(None, 4)
            self.records.append(dns.rrset.from_text(name, int(ttl), rdclass, rdtype, rdata))
        soa = [r for r in self.records if r.rdtype == dns.rdatatype.SOA]
        self.origin = soa[0].name
        self.soa = soa[0]

    def lookup(self, name: dns.name.Name, rdtype: int) -> list[dns.rrset.RRset]:
        return [r for r in self.records if r.name == name and (rdtype in (dns.rdatatype.ANY, r.rdtype))]

    def has_name(self, name: dns.name.Name) -> bool:
        return any(r.name == name for r in self.records)


class DNSServer:
    """Start with `with dns_server() as server:`; `server.queries` holds (transport, query) received."""

    def __init__(self, zone: Zone, host: str, tls: ssl.SSLContext | None = None) -> None:
        self.zone = zone
        self.host = host
        self.queries: list[tuple[str, dns.message.Message]] = []
        self._stop = threading.Event()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        udp_class = type("UDP", (socketserver.ThreadingUDPServer,), {"address_family": family, "daemon_threads": True})
        tcp_class = type("TCP", (socketserver.ThreadingTCPServer,), {"address_family": family, "daemon_threads": True})
        server = self

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = server.answer(data, "udp")
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class TCPHandler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while not server._stop.is_set():
                    header = self.rfile.read(2)
                    if len(header) < 2:
                        return
                    data = self.rfile.read(int.from_bytes(header, "big"))
                    reply = server.answer(data, "tcp")
                    if reply is None:  # silent: hold the connection open until the client gives up
                        server._stop.wait()
                        return
                    self.wfile.write(len(reply).to_bytes(2, "big") + reply)

        for _ in range(20):  # UDP and TCP must share a port; another process may hold the TCP one
            self.udp = udp_class((host, 0), UDPHandler)
            self.port = int(self.udp.server_address[1])
            try:
                self.tcp = tcp_class((host, self.port), TCPHandler)
                break
            except OSError:
                self.udp.server_close()
        else:
            raise RuntimeError("no free port for both UDP and TCP")

        class TLSHandler(TCPHandler):
            """DNS over TLS (RFC 7858): the TCP framing inside a TLS session."""

            def setup(self) -> None:
                assert tls is not None
                try:
                    self.request = tls.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError):
                    self.request = None  # the client refused our certificate: nothing to answer
                if self.request is not None:
                    super().setup()

            def handle(self) -> None:
                if self.request is not None:
                    super().handle()

            def finish(self) -> None:
                if self.request is not None:
                    super().finish()

        self.servers: list[socketserver.BaseServer] = [self.udp, self.tcp]
        self.tls_port = 0
        if tls is not None:
            self.dot = tcp_class((host, 0), TLSHandler)
            self.tls_port = int(self.dot.server_address[1])
            self.servers.append(self.dot)
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in self.servers]

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def answer(self, data: bytes, transport: str) -> bytes | None:
        query = dns.message.from_wire(data)
        self.queries.append((transport, query))
        question = query.question[0]
        in_zone = question.name != dns.name.root and question.name.parent() == self.zone.origin
        label = question.name.labels[0].decode().lower() if in_zone else ""
        if label == "silent":
            return None
        if label == "garbage":
            return b"\x13\x37 this is not a DNS message"
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if label == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif label == "refused":
            response.set_rcode(dns.rcode.REFUSED)
        elif not self.zone.has_name(question.name):
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self.zone.soa)
        else:
            response.answer.extend(self.zone.lookup(question.name, question.rdtype))
            if not response.answer:  # NODATA: the name exists, not with this type
                response.authority.append(self.zone.soa)
            for rrset in list(response.answer):  # glue for MX and NS targets, as real servers add
                if rrset.rdtype in (dns.rdatatype.MX, dns.rdatatype.NS):
                    for rdata in rrset:
                        target: Any = rdata.exchange if rrset.rdtype == dns.rdatatype.MX else rdata.target
                        response.additional.extend(self.zone.lookup(target, dns.rdatatype.A))
        return response.to_wire()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for s in self.servers:
            s.shutdown()
            s.server_close()


@contextmanager
def dns_server(
    zone_text: str = EXAMPLE_ZONE, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> Iterator[DNSServer]:
    """The server on `host`; with `tls`, also DNS over TLS on `server.tls_port`."""
    server = DNSServer(Zone(zone_text), host, tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
