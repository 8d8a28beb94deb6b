"""A small shop web app to try the `journey` prober on: `python -m exporter.demo.shop [--port 10136]`.

It behaves like a real shop front on the points a business-transaction check has to cope with:

    GET  /                 home page with the catalogue
    GET  /login            login form; starts a session (cookie) holding a CSRF token
    POST /login            form fields username, password, csrf_token; 303 to /account, or 401 / 403
    GET  /account          "Signed in as <user>" (303 to /login without a signed-in session)
    POST /api/cart/items   JSON {"sku", "quantity"} with header X-CSRF-Token; 201 JSON with the cart id
    GET  /checkout?cart=   the checkout page of the session's cart (404 for someone else's cart)
    GET  /healthz          "ok"

State lives in memory. The one user is `demo` with the password from --password (default demo-password).
Standard library only (http.server, threads): it is a demo, not part of the exporter's hot path.
A port that is taken is a one-line message and exit status 1, not a traceback.
"""

from __future__ import annotations

import argparse
import errno
import html
import json
import secrets
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

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


class ShopHandler(BaseHTTPRequestHandler):
    server_version = "PulseDemoShop/1.0"
    shop: Shop  # set on the subclass made by make_server

    # ---- plumbing ----

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and demos probe it many times a minute

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


def make_server(host: str, port: int, password: str = "demo-password") -> ThreadingHTTPServer:
    """The shop's HTTP server, bound but not serving yet (call serve_forever)."""
    handler = type("Handler", (ShopHandler,), {"shop": Shop({"demo": password})})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pulse demo shop, a target for the journey prober")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--password", default="demo-password", help="password of the user `demo`")
    args = parser.parse_args(argv)
    try:
        server = make_server(args.host, args.port, args.password)
    except OSError as err:
        print(f"pulse demo shop: {_listen_problem(args.host, args.port, err)}", file=sys.stderr)
        return 1
    print(f"Pulse demo shop on http://{args.host}:{server.server_address[1]}/ (user demo)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _listen_problem(host: str, port: int, err: OSError) -> str:
    if err.errno == errno.EADDRINUSE:
        return f"port {port} is in use on {host}: stop what listens there or choose another port with --port"
    return f"cannot listen on {host}:{port}: {err.strerror or err}"


if __name__ == "__main__":
    sys.exit(main())
