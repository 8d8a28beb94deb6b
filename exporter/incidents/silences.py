"""Acknowledgement by silence: a person who silences an alert in Alertmanager has seen it.

Pulse reads Alertmanager's API v2 back: the alerts it holds silenced (`GET /api/v2/alerts?silenced=true
&active=false&inhibited=false`, each with `status.silencedBy`), then each silence named there (`GET
/api/v2/silence/{id}`: createdBy, comment, startsAt), and acknowledges the alert's open incident in the
journal as `silence <id> by <createdBy>`, at the silence's start, or at the moment Pulse saw it when the
silence started before the incident (a standing silence, e.g. a maintenance window, acknowledges an
incident no earlier than Pulse learns of it). An incident acknowledged already keeps its acknowledgement.

The bearer token, if configured, goes to Alertmanager's URL only: every request is a path under that
URL, and a redirect is refused, never followed.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from exporter.config.platform import EndpointConfig
from exporter.incidents.webhook import FINGERPRINT, InvalidWebhook, parse_time

if TYPE_CHECKING:
    from exporter.incidents.journal import Journal

SILENCED_ALERTS = "/api/v2/alerts?silenced=true&active=false&inhibited=false&unprocessed=false"
SILENCE_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")  # Alertmanager's are UUIDs
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # every silenced alert with its labels: far below this


class SilenceSyncError(Exception):
    """Alertmanager could not be read; the message names its URL (never the token) and the reason."""


@dataclass(frozen=True)
class Silence:
    id: str
    created_by: str
    comment: str
    starts_at: float


@dataclass(frozen=True)
class SyncResult:
    silenced_alerts: int  # alerts Alertmanager holds silenced now
    acknowledged: int  # incidents this sync acknowledged (not those acknowledged before)


class AlertmanagerClient:
    """The few reads of Alertmanager's API v2 that Pulse makes; blocking (run it in a worker thread)."""

    def __init__(self, endpoint: EndpointConfig) -> None:
        self.base = endpoint.base
        headers = {"Accept": "application/json"}
        if endpoint.bearer_token:
            headers["Authorization"] = f"Bearer {endpoint.bearer_token}"
        self._client = httpx.Client(headers=headers, timeout=endpoint.timeout, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AlertmanagerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, path: str, *, missing_ok: bool = False) -> Any:
        """GET base+path as JSON; SilenceSyncError for anything but a 200 with a JSON body (None for a 404
        when `missing_ok`: a silence may expire and be gone between two reads)."""
        url = self.base + path
        shown = url.split("?", 1)[0]
        try:
            with self._client.stream("GET", url) as response:
                if response.is_redirect:
                    raise SilenceSyncError(
                        f"{shown}: Alertmanager answered a redirect ({response.status_code}); "
                        "set alertmanager.url to where it is served (redirects are not followed)"
                    )
                if response.status_code == 404 and missing_ok:
                    return None
                if response.status_code != 200:
                    raise SilenceSyncError(f"{shown}: Alertmanager answered {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise SilenceSyncError(f"{shown}: answer larger than {MAX_RESPONSE_BYTES} bytes")
        except httpx.HTTPError as err:
            raise SilenceSyncError(f"{shown}: cannot reach Alertmanager: {err or type(err).__name__}") from None
        try:
            return json.loads(body)
        except ValueError:
            raise SilenceSyncError(f"{shown}: Alertmanager's answer is not JSON") from None

    def silenced_alerts(self) -> list[dict[str, Any]]:
        alerts = self.get(SILENCED_ALERTS)
        if not isinstance(alerts, list):
            raise SilenceSyncError(f"{self.base}/api/v2/alerts: not a list of alerts")
        return [a for a in alerts if isinstance(a, dict)]

    def silence(self, silence_id: str) -> Silence | None:
        if not SILENCE_ID.match(silence_id):
            return None
        found = self.get(f"/api/v2/silence/{silence_id}", missing_ok=True)
        if not isinstance(found, dict):
            return None
        try:
            starts_at = parse_time(found.get("startsAt"), "startsAt")
        except InvalidWebhook:
            return None
        return Silence(
            id=silence_id,
            created_by=str(found.get("createdBy", ""))[:100] or "unknown",
            comment=str(found.get("comment", ""))[:1000],
            starts_at=starts_at or 0.0,
        )


def sync_silences(journal: Journal, endpoint: EndpointConfig, now: float | None = None) -> SyncResult:
    """Acknowledge the open incidents whose alerts Alertmanager holds silenced. Blocking."""
    seen_at = time.time() if now is None else now
    acknowledged = 0
    with AlertmanagerClient(endpoint) as client:
        alerts = client.silenced_alerts()
        silences: dict[str, Silence | None] = {}
        for alert in alerts:
            fingerprint, status = alert.get("fingerprint"), alert.get("status")
            silenced_by = status.get("silencedBy") if isinstance(status, dict) else None
            if not isinstance(fingerprint, str) or not FINGERPRINT.match(fingerprint) or not silenced_by:
                continue
            try:
                started_at = parse_time(alert.get("startsAt"), "startsAt")
            except InvalidWebhook:
                continue
            if started_at is None:
                continue
            silence = _first_silence(client, silences, silenced_by)
            if silence is None:
                continue
            at = silence.starts_at if silence.starts_at >= started_at else max(seen_at, started_at)
            by = f"silence {silence.id} by {silence.created_by}"
            acknowledged += journal.acknowledge_alert(fingerprint.lower(), started_at, by, at)
    return SyncResult(silenced_alerts=len(alerts), acknowledged=acknowledged)


def _first_silence(client: AlertmanagerClient, known: dict[str, Silence | None], ids: object) -> Silence | None:
    """The earliest-starting of the silences muting an alert (fetched once per sync each)."""
    found = []
    for silence_id in ids if isinstance(ids, list) else []:
        if not isinstance(silence_id, str):
            continue
        if silence_id not in known:
            known[silence_id] = client.silence(silence_id)
        silence = known[silence_id]
        if silence is not None:
            found.append(silence)
    return min(found, key=lambda s: s.starts_at, default=None)
