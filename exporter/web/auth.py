"""Basic auth for every endpoint: `Authorization: Basic` headers checked against the bcrypt hashes of
the web config's `basic_auth_users` (exporter/config/web.py reads and checks them)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import hashlib
from collections import OrderedDict

from exporter.config.web import BCRYPT_MIN_COST, bcrypt_cost


class BasicAuthenticator:
    """Checks `Authorization: Basic` headers against bcrypt hashes.

    bcrypt is slow on purpose (a quarter of a second at cost 12), so results are cached by a SHA-256 of
    user, hash and password, as exporter-toolkit does. Checks run one at a time on their own thread (as
    exporter-toolkit serialises them with a mutex): a flood of wrong passwords costs one core and never
    takes the threads collectors run on, nor the event loop.

    An unknown user's password is checked against a dummy hash with the cost of the costliest configured
    hash, so it takes the same bcrypt work as a known user's: response time does not reveal which users
    exist. (Users with different costs can still be told apart from each other: give them all one cost.)
    """

    _CACHE_SIZE = 256

    def __init__(self, users: dict[str, str]) -> None:
        self.users = {user: hashed.encode() for user, hashed in users.items()}
        self._dummy_hash = _dummy_hash(list(self.users.values())) if self.users else b""
        self._cache: OrderedDict[bytes, bool] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    def hash_to_check(self, user: str) -> bytes:
        """The hash a password given for `user` is checked against: the user's own, or the dummy."""
        return self.users.get(user, self._dummy_hash)

    async def allows(self, authorization: str | None) -> bool:
        if not self.users:
            return True
        credentials = _parse_basic(authorization)
        if credentials is None:
            return False
        user, password = credentials
        known = user in self.users
        hashed = self.hash_to_check(user)
        key = hashlib.sha256(b"\0".join([user.encode(), hashed, password.encode()])).digest()
        cached = self._cache.get(key)
        if cached is None:
            matches = await asyncio.get_running_loop().run_in_executor(
                _bcrypt_thread, _checkpw, hashed, password.encode()
            )
            cached = matches and known
            self._cache[key] = cached
            if len(self._cache) > self._CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return cached


_bcrypt_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pulse-bcrypt")


def _checkpw(hashed: bytes, password: bytes) -> bool:
    import bcrypt  # noqa: PLC0415 - on first use: a server without basic auth saves its memory

    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # e.g. bcrypt 5 refuses passwords over 72 bytes: wrong, whoever the user
        return False


def _dummy_hash(hashes: list[bytes]) -> bytes:
    """A well-formed hash that no password matches, with the variant and cost of the costliest of `hashes`:
    checking it costs what checking that hash costs. Made without hashing, so a reload stays instant."""
    import bcrypt  # noqa: PLC0415 - only when basic auth is configured

    costliest = max(hashes, key=bcrypt_cost)
    salt = bcrypt.gensalt(rounds=BCRYPT_MIN_COST)[7:]  # random, and well-formed (bcrypt refuses some endings)
    return costliest[:7] + salt + b"." * 31  # all-zero checksum: no password is known to hash to it


def _parse_basic(authorization: str | None) -> tuple[str, str] | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
