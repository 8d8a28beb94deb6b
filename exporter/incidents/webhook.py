"""Alertmanager's webhook (payload version 4) into the journal.

Alertmanager POSTs a JSON object; of it Pulse reads `version` and `alerts[]` (fingerprint, status, labels,
annotations, startsAt, endsAt, generatorURL) and ignores every other field, present or future. Anything
else is refused whole with a one-line message naming the field (`alerts[3].startsAt: not an RFC 3339
time`) and nothing is written. A valid delivery is answered 200 only once the journal has committed it
(and, on SQLite, fsynced it): Alertmanager retries what got no 2xx, so nothing accepted is ever lost.

Times are kept to the millisecond: Prometheus sends them so, Alertmanager's API v2 (where silences are
read back, silences.py) renders them so, while its webhook writes nanoseconds. Truncating here keeps one
alert's `startsAt` the same key whichever way it arrives.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exporter.incidents.model import AlertNotice, AlertStatus

if TYPE_CHECKING:
    from exporter.incidents.journal import Journal

log = logging.getLogger(__name__)

PATH = "/alertmanager/webhook"
MAX_BODY_BYTES = 1024 * 1024  # Alertmanager's max_alerts of 0 (no limit) can send big groups: 1 MiB
MAX_ALERTS = 1000  # per delivery; a larger group is refused (set max_alerts in alertmanager.yml)
MAX_PAIRS = 100  # labels, and annotations, per alert
MAX_NAME = 256  # characters of a label or annotation name
MAX_LABEL_VALUE = 4096
MAX_ANNOTATION_VALUE = 16 * 1024  # descriptions and runbooks are prose
MAX_URL = 4096
FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")  # Alertmanager's are 16 hex digits
RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
ZERO_TIME_YEAR = 1  # Go's zero time, 0001-01-01T00:00:00Z: Alertmanager's endsAt of a firing alert


class InvalidWebhook(ValueError):
    """The body is not a webhook Pulse accepts; the message names the field."""


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    message: str


def parse_time(text: object, field: str) -> float | None:
    """An RFC 3339 time as Unix seconds truncated to the millisecond; None for Go's zero time (unset)."""
    match = RFC3339.match(text) if isinstance(text, str) and len(text) <= 64 else None
    if match is None:
        raise InvalidWebhook(f"{field}: not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, offset_hours, offset_minutes = match.groups()[6:]
    if year == ZERO_TIME_YEAR:
        return None
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise InvalidWebhook(f"{field}: not an RFC 3339 time (no such date)")
    if hour > 23 or minute > 59 or second > 60:  # 60: a leap second, which RFC 3339 allows
        raise InvalidWebhook(f"{field}: not an RFC 3339 time (no such time of day)")
    offset = 0
    if not zulu:
        if int(offset_hours) > 23 or int(offset_minutes) > 59:
            raise InvalidWebhook(f"{field}: not an RFC 3339 time (bad offset)")
        offset = (int(offset_hours) * 3600 + int(offset_minutes) * 60) * (1 if sign == "+" else -1)
    seconds = calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0)) - offset
    milliseconds = int((fraction or "0").ljust(3, "0")[:3])
    return (seconds * 1000 + milliseconds) / 1000


def parse_webhook(body: bytes) -> list[AlertNotice]:
    """The alerts of one delivery; InvalidWebhook naming the first field that is wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidWebhook(f"body: {len(body)} bytes; at most {MAX_BODY_BYTES}")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise InvalidWebhook(f"body: not JSON ({reason})") from None
    if not isinstance(payload, dict):
        raise InvalidWebhook("body: not a JSON object (an Alertmanager webhook payload)")
    if payload.get("version") != "4":
        raise InvalidWebhook(f'version: {_shown(payload.get("version"))}; Pulse reads webhook payload version "4"')
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise InvalidWebhook("alerts: not a list")
    if len(alerts) > MAX_ALERTS:
        raise InvalidWebhook(f"alerts: {len(alerts)} alerts; at most {MAX_ALERTS} per delivery (set max_alerts)")
    return [_notice(alert, f"alerts[{i}]") for i, alert in enumerate(alerts)]


def _notice(alert: object, where: str) -> AlertNotice:
    if not isinstance(alert, dict):
        raise InvalidWebhook(f"{where}: not an object")
    fingerprint = alert.get("fingerprint")
    if not isinstance(fingerprint, str) or not FINGERPRINT.match(fingerprint):
        raise InvalidWebhook(f"{where}.fingerprint: not 1 to 64 hexadecimal digits")
    status = alert.get("status")
    if status not in ("firing", "resolved"):
        raise InvalidWebhook(f"{where}.status: {_shown(status)}; firing or resolved")
    labels = _string_map(alert.get("labels"), f"{where}.labels", MAX_LABEL_VALUE)
    annotations = _string_map(alert.get("annotations", {}), f"{where}.annotations", MAX_ANNOTATION_VALUE)
    starts_at = parse_time(alert.get("startsAt"), f"{where}.startsAt")
    if starts_at is None:
        raise InvalidWebhook(f"{where}.startsAt: the zero time; an alert has a start")
    ends_at = parse_time(alert.get("endsAt", "0001-01-01T00:00:00Z"), f"{where}.endsAt")
    if status == "resolved":
        if ends_at is None:
            raise InvalidWebhook(f"{where}.endsAt: a resolved alert needs its end")
        if ends_at < starts_at:
            raise InvalidWebhook(f"{where}.endsAt: before startsAt")
    generator_url = alert.get("generatorURL", "")
    if not isinstance(generator_url, str) or len(generator_url) > MAX_URL:
        raise InvalidWebhook(f"{where}.generatorURL: not a string of at most {MAX_URL} characters")
    kind: AlertStatus = "firing" if status == "firing" else "resolved"
    return AlertNotice(
        fingerprint=fingerprint.lower(),
        status=kind,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at if kind == "resolved" else None,  # a firing alert's endsAt is only its validity
        generator_url=generator_url,
    )


def _string_map(value: object, where: str, max_value: int) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidWebhook(f"{where}: not an object of strings")
    if len(value) > MAX_PAIRS:
        raise InvalidWebhook(f"{where}: {len(value)} entries; at most {MAX_PAIRS}")
    for name, text in value.items():
        if not name or len(name) > MAX_NAME:
            raise InvalidWebhook(f"{where}: a name of {len(name)} characters; 1 to {MAX_NAME}")
        if not isinstance(text, str):
            raise InvalidWebhook(f"{where}.{_clip(name)}: not a string")
        if len(text) > max_value:
            raise InvalidWebhook(f"{where}.{_clip(name)}: {len(text)} characters; at most {max_value}")
    return dict(value)


def _shown(value: object) -> str:
    """A field's value in a message: short, and never more than a glimpse of what a client sent."""
    return "missing" if value is None else _clip(json.dumps(value))


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


async def receive(body: bytes, journal: Journal | None) -> WebhookAnswer:
    """Parse one delivery and record it; the answer for Alertmanager. 503 (retried by Alertmanager) when
    the journal cannot write it; 400 for a malformed body, which no retry would fix."""
    if journal is None:
        return WebhookAnswer(503, "the incident journal is not open yet")
    try:
        notices = parse_webhook(body)
    except InvalidWebhook as err:
        log.warning("webhook refused", extra={"err": str(err)})
        return WebhookAnswer(400, str(err))
    return await record(journal, notices, time.time())


async def record(journal: Journal, notices: Sequence[AlertNotice], received_at: float) -> WebhookAnswer:
    from exporter.incidents.journal import JournalError  # noqa: PLC0415 - SQLAlchemy only with a journal

    try:
        ids = await asyncio.to_thread(journal.record, notices, received_at)
    except JournalError as err:
        log.error("webhook not recorded; Alertmanager will retry", extra={"err": str(err)})
        return WebhookAnswer(503, "the incident journal cannot record this now (see the Pulse log); retry")
    return WebhookAnswer(200, f"recorded {len(ids)} alert{'s' if len(ids) != 1 else ''}")
