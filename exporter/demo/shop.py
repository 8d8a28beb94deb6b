"""A small shop web app to try the `journey` prober on: `python -m exporter.demo.shop [--port 10136]`.

It behaves like a real shop front on the points a business-transaction check has to cope with:

    GET  /                 home page with the catalogue
    GET  /login            login form; starts a session (cookie) holding a CSRF token
    POST /login            form fields username, password, csrf_token; 303 to /account, or 401 / 403
    GET  /account          "Signed in as <user>" (303 to /login without a signed-in session)
    POST /api/cart/items   JSON {"sku", "quantity"} with header X-CSRF-Token; 201 JSON with the cart id
    GET  /checkout?cart=   the checkout page of the session's cart (404 for someone else's cart)
    GET  /products/<sku>   a product page (404 for an unknown product)
    GET  /api/recommendations  JSON, slow at times, and failing with 500 about one time in ten
    GET  /healthz          "ok"

The same port answers HTTPS too, with a self-signed certificate made at start (90 days, for `localhost`
and 127.0.0.1: a client's first byte tells TLS from plain HTTP), and DNS over UDP for the zone
`demo.test` (`shop.demo.test` is 127.0.0.1): the demo's TLS and DNS probes need no other port.

With `--access-log FILE` it writes an access log as nginx does (combined, plus $request_time), one line
per request, which the demo's `logs:` section follows. With `--visitors N` a background thread sends it
about N requests a second, as visitors browsing would: mostly pages and products, some missing pages
(404), recommendations that sometimes fail (500), sign-in pages (303 without a session).

State lives in memory. The one user is `demo` with the password from --password (default demo-password).
Standard library only (http.server, threads): it is a demo, not part of the exporter's hot path.
A port that is taken is a one-line message and exit status 1, not a traceback.
"""

from __future__ import annotations

import argparse
import errno
import html
import ipaddress
import json
import random
import secrets
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_PORT = 10136  # next to Pulse's 10135: scripts/demo and examples/journey-shop.yml use it
SESSION_COOKIE = "shop_session"
CATALOGUE = {
    "tea-001": ("Sencha green tea, 100 g", 790),
    "tea-002": ("Assam black tea, 250 g", 1150),
    "mug-001": ("Stoneware mug", 1490),
}


@dataclass
class Session:
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user: str | None = None
    cart_id: str | None = None
    cart: dict[str, int] = field(default_factory=dict)


class Shop:
    """The shop's state: users and sessions; the HTTP handler below only translates requests."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()

    def new_session(self) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(24)
        with self.lock:
            session = self.sessions[session_id] = Session()
        return session_id, session

    def check_password(self, user: str, password: str) -> bool:
        expected = self.users.get(user)
        return expected is not None and secrets.compare_digest(expected.encode(), password.encode())


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)} · Pulse Demo Shop</title>"
        f"</head><body><header><a href='/'>Pulse Demo Shop</a></header><main>{body}</main></body></html>"
    ).encode()


def _money(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


class AccessLog:
    """An access log as nginx writes it: combined, plus $request_time (seconds, millisecond resolution)."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(
        self, *, client: str, request_line: str, status: int, size: int, referer: str, agent: str, seconds: float
    ) -> None:
        when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        quoted = [value.replace("\\", "\\x5C").replace('"', "\\x22") or "-" for value in (request_line, referer, agent)]
        line = f'{client} - - [{when}] "{quoted[0]}" {status} {size} "{quoted[1]}" "{quoted[2]}" {seconds:.3f}\n'
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class ShopHandler(BaseHTTPRequestHandler):
    server_version = "PulseDemoShop/1.0"
    shop: Shop  # set on the subclass made by make_server
    access_log: AccessLog | None = None

    # ---- plumbing ----

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and demos probe it many times a minute

    def handle_one_request(self) -> None:
        self._status, self._sent, started = 0, 0, time.monotonic()
        super().handle_one_request()
        if self.access_log is not None and self._status:
            self.access_log.write(
                client=self.client_address[0],
                request_line=self.requestline,
                status=self._status,
                size=self._sent,
                referer=self.headers.get("Referer", "") if self.headers else "",
                agent=self.headers.get("User-Agent", "") if self.headers else "",
                seconds=time.monotonic() - started,
            )

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def _session(self) -> tuple[str, Session] | None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        morsel = cookie.get(SESSION_COOKIE)
        if morsel is None:
            return None
        session = self.shop.sessions.get(morsel.value)
        return (morsel.value, session) if session is not None else None

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self._sent = len(body)

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self._send(HTTPStatus.SEE_OTHER, b"", headers={"Location": location, **(headers or {})})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, 1 << 20))

    # ---- routes ----

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        routes = {"/": self._home, "/login": self._login_form, "/account": self._account, "/healthz": self._health}
        if url.path == "/checkout":
            self._checkout(parse_qs(url.query).get("cart", [""])[0])
        elif url.path.startswith("/products/"):
            self._product(url.path.removeprefix("/products/"))
        elif url.path == "/api/recommendations":
            self._recommendations()
        elif url.path in routes:
            routes[url.path]()
        else:
            self._send(HTTPStatus.NOT_FOUND, _page("Not found", "<h1>Not found</h1>"))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/login":
            self._login()
        elif path == "/api/cart/items":
            self._add_to_cart()
        else:
            self._send(HTTPStatus.NOT_FOUND, _page("Not found", "<h1>Not found</h1>"))

    def _health(self) -> None:
        self._send(HTTPStatus.OK, b"ok\n", "text/plain")

    def _home(self) -> None:
        items = "".join(
            f"<li data-sku='{sku}'>{html.escape(name)} <span class='price'>{_money(price)}</span></li>"
            for sku, (name, price) in CATALOGUE.items()
        )
        body = f"<h1>Welcome to Pulse Demo Shop</h1><ul class='products'>{items}</ul><a href='/login'>Sign in</a>"
        self._send(HTTPStatus.OK, _page("Home", body))

    def _product(self, sku: str) -> None:
        if sku not in CATALOGUE:
            self._send(HTTPStatus.NOT_FOUND, _page("Not found", "<h1>No such product</h1>"))
            return
        name, price = CATALOGUE[sku]
        self._send(HTTPStatus.OK, _page(name, f"<h1>{html.escape(name)}</h1><p class='price'>{_money(price)}</p>"))

    def _recommendations(self) -> None:
        # A flaky backend: usually quick, sometimes slow, about one call in ten fails.
        time.sleep(random.choice((0.002, 0.01, 0.03, 0.08, 0.3)))
        if random.random() < 0.1:
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "recommendation service unavailable"})
            return
        self._json(HTTPStatus.OK, {"skus": random.sample(sorted(CATALOGUE), 2)})

    def _login_form(self, error: str = "", status: HTTPStatus = HTTPStatus.OK) -> None:
        found = self._session()
        session_id, session = found if found is not None else self.shop.new_session()
        message = f"<p class='error'>{html.escape(error)}</p>" if error else ""
        body = (
            f"<h1>Sign in</h1>{message}<form method='post' action='/login'>"
            f'<input type="hidden" name="csrf_token" value="{session.csrf_token}">'
            "<input name='username'><input name='password' type='password'><button>Sign in</button></form>"
        )
        cookie = f"{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax"
        self._send(status, _page("Sign in", body), headers={"Set-Cookie": cookie})

    def _login(self) -> None:
        found = self._session()
        form = {k: v[0] for k, v in parse_qs(self._body().decode("utf-8", "replace")).items()}
        if found is None or not secrets.compare_digest(found[1].csrf_token, form.get("csrf_token", "")):
            self._send(HTTPStatus.FORBIDDEN, _page("Forbidden", "<h1>Session expired or bad CSRF token</h1>"))
            return
        if not self.shop.check_password(form.get("username", ""), form.get("password", "")):
            self._login_form("Invalid username or password", HTTPStatus.UNAUTHORIZED)
            return
        found[1].user = form["username"]
        self._redirect("/account")

    def _account(self) -> None:
        found = self._session()
        if found is None or found[1].user is None:
            self._redirect("/login")
            return
        body = f"<h1>Your account</h1><p>Signed in as {html.escape(found[1].user)}</p>"
        self._send(HTTPStatus.OK, _page("Account", body))

    def _add_to_cart(self) -> None:
        found = self._session()
        if found is None or found[1].user is None:
            self._json(HTTPStatus.UNAUTHORIZED, {"error": "sign in first"})
            return
        session = found[1]
        if not secrets.compare_digest(session.csrf_token, self.headers.get("X-CSRF-Token", "")):
            self._json(HTTPStatus.FORBIDDEN, {"error": "bad CSRF token"})
            return
        try:
            item = json.loads(self._body())
            sku, quantity = str(item["sku"]), int(item.get("quantity", 1))
        except (ValueError, KeyError, TypeError):
            self._json(HTTPStatus.BAD_REQUEST, {"error": 'expected {"sku": "...", "quantity": n}'})
            return
        if sku not in CATALOGUE or not 0 < quantity <= 100:
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": f"unknown product {sku} or bad quantity"})
            return
        with self.shop.lock:
            session.cart_id = session.cart_id or secrets.token_hex(8)
            session.cart[sku] = session.cart.get(sku, 0) + quantity
        self._json(HTTPStatus.CREATED, self._cart_view(session))

    @staticmethod
    def _cart_view(session: Session) -> dict[str, Any]:
        items = [{"sku": sku, "quantity": n, "price_cents": CATALOGUE[sku][1]} for sku, n in session.cart.items()]
        total = sum(CATALOGUE[sku][1] * n for sku, n in session.cart.items())
        return {"cart_id": session.cart_id, "items": items, "total_cents": total}

    def _checkout(self, cart_id: str) -> None:
        found = self._session()
        if found is None or found[1].user is None:
            self._redirect("/login")
            return
        session = found[1]
        if not cart_id or cart_id != session.cart_id:
            self._send(HTTPStatus.NOT_FOUND, _page("Checkout", "<h1>No such cart</h1>"))
            return
        cart = self._cart_view(session)
        rows = "".join(f"<li>{item['quantity']} x {html.escape(item['sku'])}</li>" for item in cart["items"])
        body = f"<h1>Checkout</h1><ul>{rows}</ul><p class='total'>Total: {_money(cart['total_cents'])}</p>"
        self._send(HTTPStatus.OK, _page("Checkout", body))


# What a visitor asks for, with weights: mostly pages that exist, some that do not.
VISITS = (
    ("/", 30),
    ("/products/tea-001", 15),
    ("/products/tea-002", 10),
    ("/products/mug-001", 10),
    ("/products/tea-999", 3),  # a product that is gone: 404
    ("/api/recommendations", 15),  # fails now and then: 500
    ("/login", 8),
    ("/account", 5),  # no session: 303
    ("/wp-login.php", 2),  # a scanner: 404
    ("/favicon.ico", 2),  # 404
)
VISITOR_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
)


def visit_forever(base_url: str, per_second: float, stop: threading.Event) -> None:
    """Browse the shop at about `per_second` requests a second (randomly spaced) until `stop`."""
    paths = [path for path, _ in VISITS]
    weights = [weight for _, weight in VISITS]
    while not stop.wait(random.expovariate(per_second)):
        path = random.choices(paths, weights)[0]
        request = urllib.request.Request(base_url + path, headers={"User-Agent": random.choice(VISITOR_AGENTS)})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
        except urllib.error.HTTPError as err:
            err.close()  # a 404 or 500 is part of the traffic
        except OSError:
            pass  # the shop is stopping


CERTIFICATE_DAYS = 90  # as Let's Encrypt's: the probes board shows the days left, the alerts stay quiet
DNS_ZONE = dns.name.from_text("demo.test.")
DNS_RECORDS = {dns.name.from_text("shop.demo.test."): "127.0.0.1"}  # A records of the zone


def self_signed_tls_context() -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    start = datetime.now(UTC) - timedelta(hours=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=CERTIFICATE_DAYS))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as directory:  # load_cert_chain reads files only
        chain, private = Path(directory, "shop.crt"), Path(directory, "shop.key")
        chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context.load_cert_chain(chain, private)
    return context


def dns_answer(query: bytes) -> bytes | None:
    """The zone's answer to one DNS query (None for bytes that are no query): authoritative A records,
    NXDOMAIN for other names in the zone, REFUSED outside it."""
    try:
        request = dns.message.from_wire(query)
    except Exception:
        return None
    response = dns.message.make_response(request)
    if not request.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    question = request.question[0]
    if not question.name.is_subdomain(DNS_ZONE):
        response.set_rcode(dns.rcode.REFUSED)
        return response.to_wire()
    response.flags |= dns.flags.AA
    address = DNS_RECORDS.get(question.name)
    if address is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
        response.answer.append(dns.rrset.from_text(question.name, 300, "IN", "A", address))
    return response.to_wire()


class _DNSHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        answer = dns_answer(data)
        if answer is not None:
            sock.sendto(answer, self.client_address)


class ShopServer(ThreadingHTTPServer):
    """The shop's server: HTTP and HTTPS on one TCP port (a TLS client starts with a handshake record,
    byte 0x16; an HTTP request with a letter), and DNS on the same port number over UDP."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.tls = self_signed_tls_context()
        try:
            self.dns = socketserver.ThreadingUDPServer((address[0], self.server_address[1]), _DNSHandler)
        except OSError:
            self.server_close()
            raise
        self.dns.daemon_threads = True
        self._dns_thread: threading.Thread | None = None

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._dns_thread = threading.Thread(target=self.dns.serve_forever, daemon=True)
        self._dns_thread.start()
        super().serve_forever(poll_interval)

    def shutdown(self) -> None:
        super().shutdown()
        if self._dns_thread is not None:
            self.dns.shutdown()

    def server_close(self) -> None:
        super().server_close()
        if hasattr(self, "dns"):
            self.dns.server_close()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if not _starts_tls(request):
            super().finish_request(request, client_address)
            return
        try:
            secure = self.tls.wrap_socket(request, server_side=True)  # takes over the connection
        except (ssl.SSLError, OSError):
            return  # a failed handshake: a client that distrusts the certificate, a scanner
        with secure:
            super().finish_request(secure, client_address)


def _starts_tls(connection: socket.socket) -> bool:
    if isinstance(connection, ssl.SSLSocket):
        return False  # the listening socket was wrapped already (tests with their own certificates)
    connection.settimeout(10)
    try:
        return connection.recv(1, socket.MSG_PEEK) == b"\x16"
    except OSError:
        return False
    finally:
        connection.settimeout(None)


def make_server(host: str, port: int, password: str = "demo-password", access_log: Path | None = None) -> ShopServer:
    """The shop's server, bound but not serving yet (call serve_forever). Port 0 picks a port free for
    both TCP and UDP."""
    attributes: dict[str, Any] = {"shop": Shop({"demo": password})}
    if access_log is not None:
        attributes["access_log"] = AccessLog(access_log)
    handler = type("Handler", (ShopHandler,), attributes)
    for _ in range(9 if port == 0 else 0):  # an ephemeral TCP port whose UDP twin is taken: try another
        try:
            return ShopServer((host, port), handler)
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
    return ShopServer((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pulse demo shop, a target for the journey prober")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--password", default="demo-password", help="password of the user `demo`")
    parser.add_argument("--access-log", type=Path, help="write an nginx-style access log (combined + request time)")
    parser.add_argument("--visitors", type=float, default=0, help="send the shop about N requests a second")
    args = parser.parse_args(argv)
    if args.visitors < 0:
        parser.error("--visitors must be 0 or more")
    try:
        server = make_server(args.host, args.port, args.password, args.access_log)
    except OSError as err:
        problem = (
            _listen_problem(args.host, args.port, err) if err.filename is None else f"{err.filename}: {err.strerror}"
        )
        print(f"pulse demo shop: {problem}", file=sys.stderr)
        return 1
    port = server.server_address[1]
    print(f"Pulse demo shop on http://{args.host}:{port}/ and https (user demo), DNS on udp/{port}", flush=True)
    stop = threading.Event()
    if args.visitors:
        base_url = f"http://{'127.0.0.1' if args.host in ('', '0.0.0.0') else args.host}:{port}"
        threading.Thread(target=visit_forever, args=(base_url, args.visitors, stop), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    return 0


def _listen_problem(host: str, port: int, err: OSError) -> str:
    if err.errno == errno.EADDRINUSE:
        return f"port {port} is in use on {host}: stop what listens there or choose another port with --port"
    return f"cannot listen on {host}:{port}: {err.strerror or err}"


if __name__ == "__main__":
    sys.exit(main())
