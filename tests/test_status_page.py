"""The status page (/status, /status.json) of a real pulse-exporter, reading a real Prometheus filled
with 95 days of backfilled probe history and a real journal (SQLite) holding incidents and maintenance.

What the platform's users see: each public service by its title with its current state, the share of
successful probes per day and over the last 90 days (checked against figures this test computes from
the samples it wrote), open incidents without any internal detail (an incident carrying hostile labels
and annotations: none of their text may appear), planned maintenance; served without auth only when
`status.public` says so, and still answering plainly when Prometheus cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import bcrypt
import httpx
import matplotlib.image
import numpy
import pytest
import yaml

from exporter.app import Exporter, LoadedConfig
from exporter.config.loader import load_model
from exporter.config.web import WebConfig
from exporter.incidents.journal import Journal, sqlite_url
from exporter.incidents.model import AlertNotice
from exporter.registry import PulseConfig
from exporter.status.page import PublicIncident, ServiceStatus, StatusPage, local_days
from exporter.status.render import banner, render_html
from exporter.web.landing import landing_page
from exporter.web.routes import Routes
from exporter.web.server import Request
from tests.alertmanager_server import HttpCapture
from tests.helpers import RunningExporter, free_port, require_binary
from tests.prometheus_server import PrometheusServer, create_blocks, start_prometheus
from tests.pulse_process import launch, stop, wait_healthy

pytestmark = pytest.mark.integration

DAY = 86400
DAYS = 90
PARIS = ZoneInfo("Europe/Paris")  # reports.timezone: the page's days are Paris days
HISTORY_STEP = 600  # a probe every 10 minutes over the past...
RECENT_STEP = 15  # ...every 15 s over the last half hour (and a little beyond now: the page's 5m window stays full)
PASSWORD = "correct horse"

# Each (service, instance): its probe_success history as a function of time. The outage day of the shop is
# 10 days ago, 08:00-14:00 in Paris: 6 hours of 24 (of 23 or 25 on the day the clocks change).
SERVICES: dict[str, dict[str, Any]] = {
    "shop": {"title": "Online shop", "sla": 99.9},
    "api": {"title": "Public API"},
    "payments": {"title": "Payments"},
    "search": {"title": "Search"},
    "docs": {"title": "Documentation"},
    "internal": {"title": "Internal admin console", "public": False},
}

# Hostile text in an incident's labels and annotations: the page may show none of it.
HOSTILE = {
    "alertname": "ProbeFailingXyzzy",
    "instance": "db-7.corp.internal:5432",
    "team": "team-blue-sekrit",
    "job": "pulse-probes-hidden",
    "runbook": "<script>alert('labels')</script>",
}
HOSTILE_ANNOTATIONS = {
    "summary": "Disk full on db-7 <b>PAGE</b>",
    "description": "password=hunter2 at 10.11.12.13",
    "runbook_url": "https://wiki.corp.internal/runbooks/db",
}


@dataclass
class History:
    now: float
    samples: dict[tuple[str, str], list[tuple[float, float]]]  # (service, instance) -> [(time, value)]
    by_day: dict[tuple[str, int], tuple[float, int]] = field(default_factory=dict)

    def day_figures(self, service: str, day_start: int) -> tuple[float, int]:
        """Successful samples and samples of `service` in the Paris day starting at `day_start`: what
        Prometheus' sum_over_time and count_over_time over the day at its end add up (no sample falls on
        a midnight, which both days would count)."""
        if not self.by_day:
            for (name, _), points in self.samples.items():
                for t, value in points:
                    day = midnight_of(t)
                    up, count = self.by_day.get((name, day), (0.0, 0))
                    self.by_day[(name, day)] = (up + value, count + 1)
        return self.by_day.get((service, day_start), (0.0, 0))


def day_of(t: float, days_back: int = 0) -> date:
    """The Paris date of `t`, or of `days_back` days before it."""
    return datetime.fromtimestamp(t, PARIS).date() - timedelta(days=days_back)


def midnight(day: date) -> int:
    """Paris' midnight that begins `day`."""
    return int(datetime(day.year, day.month, day.day, tzinfo=PARIS).timestamp())


def midnight_of(t: float, days_back: int = 0) -> int:
    return midnight(day_of(t, days_back))


def value_at(service: str, instance: str, t: float, now: float) -> float | None:
    """The history written: None where no probe ran. Hours are Paris' (no clock changes at 08:00-14:00)."""
    if service == "shop" and midnight_of(now, 10) + 8 * 3600 <= t < midnight_of(now, 10) + 14 * 3600:
        return 0.0
    if service == "api" and instance == "b":
        if midnight_of(now, 3) + 12 * 3600 <= t < midnight_of(now, 3) + 13 * 3600:  # an hour down, 3 days ago
            return 0.0
        if t >= now - 20 * 60:  # one of its two probes failing now: degraded
            return 0.0
    if service == "payments" and t >= now - 20 * 60:  # every probe failing now: down
        return 0.0
    if service == "docs" and t >= midnight_of(now, 1):  # no probe since yesterday: unknown, two days without data
        return None
    return 1.0


def write_history(path: Path, now: float) -> History:
    series = [("shop", "a"), ("api", "a"), ("api", "b"), ("payments", "a"), ("search", "a"), ("docs", "a")]
    series.append(("internal", "a"))
    # Sample times never fall on midnight (a whole hour, plus a multiple of both steps, plus an offset): a
    # sample on the boundary would count in both days, as Prometheus' ranges include both ends.
    start = midnight_of(now, 95)
    recent_from = int(now) - 30 * 60
    times = [start + k * HISTORY_STEP + 7 for k in range((recent_from - start) // HISTORY_STEP)]
    first_recent = recent_from - recent_from % RECENT_STEP + RECENT_STEP + 3
    times += list(range(first_recent, int(now) + 15 * 60, RECENT_STEP))
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    lines = ["# HELP probe_success Whether the probe succeeded.", "# TYPE probe_success gauge"]
    for service, instance in series:
        points = samples.setdefault((service, instance), [])
        for t in times:
            value = value_at(service, instance, t, now)
            if value is not None:
                points.append((float(t), value))
                lines.append(f'probe_success{{service="{service}",instance="{instance}"}} {value:g} {t}')
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return History(now, samples)


# --------------------------------------------------------------------------------------------- the journal


def fill_journal(path: Path, now: float) -> None:
    def notice(fingerprint: str, labels: dict[str, str], starts_at: float, **kwargs: Any) -> AlertNotice:
        return AlertNotice(
            fingerprint=fingerprint,
            status=kwargs.get("status", "firing"),
            labels=labels,
            annotations=kwargs.get("annotations", {"summary": "x"}),
            starts_at=starts_at,
            ends_at=kwargs.get("ends_at"),
            generator_url="http://prometheus.corp.internal:9090/graph?g0.expr=secret_metric",
        )

    with Journal(sqlite_url(path)) as journal:
        ids = journal.record(
            [
                # two open incidents of the shop: one line, critical, since the earlier one
                notice("f1", {**HOSTILE, "severity": "critical", "service": "shop"}, now - 1800,
                       annotations=HOSTILE_ANNOTATIONS),
                notice("f2", {"alertname": "ProbeSlowQwerty", "severity": "warning", "service": "shop"}, now - 3600),
                notice("f3", {"alertname": "ApiErrorsPlugh", "severity": "warning", "service": "api"}, now - 600),
                # not shown: a private service, a service not in the config, an info, a resolved incident
                notice("f4", {"alertname": "AdminDownFrobozz", "severity": "critical", "service": "internal"}, now),
                notice("f5", {"alertname": "GhostAlert", "severity": "critical", "service": "ghost-svc"}, now - 60),
                notice("f6", {"alertname": "InfoOnlyZork", "severity": "info", "service": "search"}, now - 60),
                notice("f7", {"alertname": "OldOutageGrue", "severity": "critical", "service": "payments"},
                       now - 7200, status="resolved", ends_at=now - 5400),
            ],
            received_at=now - 30,
        )  # fmt: skip
        journal.acknowledge(ids[1], "alice", now - 3000)
        journal.add_maintenance("search", now - 600, now + 3000, comment="Reindexing the catalogue",
                                created_by="bob", silence_id="s-1")  # fmt: skip
        journal.add_maintenance("shop", now + 86400, now + 86400 + 3600,
                                comment="Database upgrade: orders & payments paused <5 min",
                                created_by="carol", silence_id="s-2")  # fmt: skip
        journal.add_maintenance("internal", now + 3600, now + 7200, comment="Hidden admin work Xyzzy",
                                created_by="dave", silence_id="s-3")  # fmt: skip
        journal.add_maintenance("shop", now - 9 * 86400, now - 9 * 86400 + 3600, comment="Long past Plover",
                                created_by="erin", silence_id="s-4")  # fmt: skip


# ------------------------------------------------------------------------------------------- the servers


def pulse_config(prometheus_url: str, journal: Path, *, public: bool, enabled: bool = True) -> str:
    return yaml.safe_dump(
        {
            "collectors": {"host": {"enabled": False}},
            "services": SERVICES,
            "prometheus": {"url": prometheus_url, "timeout": "5s"},
            "incidents": {"enabled": True, "database": sqlite_url(journal)},
            "status": {"enabled": enabled, "title": "Example Shop status", "public": public, "cache_for": "30s"},
            "reports": {"timezone": "Europe/Paris"},
        },
        sort_keys=False,
    )


@dataclass
class Served:
    exporter: RunningExporter  # status.public: true, its Prometheus up
    protected: RunningExporter  # status.public: false, its Prometheus unreachable
    history: History
    directory: Path
    journal: Path
    prometheus: PrometheusServer


WEB_CONFIG = {"basic_auth_users": {"admin": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("status")
    now = time.time()
    journal = directory / "journal.db"
    fill_journal(journal, now)
    # The protected exporter needs no Prometheus (its own is unreachable): it starts while the history is made.
    nowhere = f"http://127.0.0.1:{free_port()}"
    started = [launch(directory / "protected", pulse_config(nowhere, journal, public=False), WEB_CONFIG)]
    try:
        history = write_history(directory / "history.om", now)
        create_blocks(directory / "history.om", directory / "prometheus-data", max_block_duration="2400h")
        prometheus = start_prometheus(
            directory, "global: {scrape_interval: 15s}\n", data_dir=directory / "prometheus-data", retention="400d"
        )
        try:
            config = pulse_config(prometheus.url, journal, public=True)
            started.append(launch(directory / "public", config, WEB_CONFIG))
            protected, public = (wait_healthy(running) for running in started)
            yield Served(public, protected, history, directory, journal, prometheus)
        finally:
            prometheus.stop()
    finally:
        for running in started:
            stop(running)


@pytest.fixture(scope="module")
def page(served: Served) -> dict[str, Any]:
    response = served.exporter.get("/status.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return dict(response.json())


@pytest.fixture(scope="module")
def html_page(served: Served) -> str:
    response = served.exporter.get("/status")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return response.text


def service(page: dict[str, Any], title: str) -> dict[str, Any]:
    return next(s for s in page["services"] if s["title"] == title)


def card(html_text: str, title: str) -> str:
    """The HTML of one service's card on the page."""
    services = html_text.split('id="services"', 1)[1]
    return services.split(f"<h3>{title}</h3>", 1)[1].split("</li>", 1)[0]


def floored_percent(ratio: float) -> str:
    if ratio >= 1:
        return "100%"
    return f"{math.floor(round(ratio * 10000, 6)) / 100:.2f}".rstrip("0").rstrip(".") + "%"


# ------------------------------------------------------------------------------------------------- tests


def test_each_public_service_is_listed_by_its_title_only(page: dict[str, Any], html_page: str) -> None:
    assert [s["title"] for s in page["services"]] == [
        "Online shop",
        "Public API",
        "Payments",
        "Search",
        "Documentation",
    ]
    assert "Internal admin console" not in html_page
    assert "internal" not in json.dumps(page)
    assert page["title"] == "Example Shop status"
    assert "<h1>Example Shop status</h1>" in html_page


def test_current_states_come_from_the_probes_and_maintenance(page: dict[str, Any], html_page: str) -> None:
    states = {s["title"]: s["state"] for s in page["services"]}
    assert states == {
        "Online shop": "operational",  # its outage was 10 days ago
        "Public API": "degraded",  # one of two probes failing
        "Payments": "down",  # every probe failing
        "Search": "maintenance",  # a window in progress, whatever the probes say
        "Documentation": "unknown",  # no probe for a day
    }
    assert page["overall"] == "down"
    assert "Some services are down" in html_page
    for title, words in [("Online shop", "Operational"), ("Public API", "Degraded"), ("Payments", "Down"),
                         ("Search", "Under maintenance"), ("Documentation", "Unknown")]:  # fmt: skip
        assert f">{words}</span>" in card(html_page, title), title


def test_uptime_per_day_and_over_90_days_match_the_samples(served: Served, page: dict[str, Any]) -> None:
    assert page["days"] == DAYS
    for key in ("shop", "api", "payments", "search", "docs"):
        shown = service(page, SERVICES[key]["title"])
        assert len(shown["days"]) == DAYS
        total_up, total = 0.0, 0
        for day in shown["days"]:
            up, count = served.history.day_figures(key, midnight(date.fromisoformat(day["date"])))
            total_up, total = total_up + up, total + count
            if count == 0:
                assert day["uptime"] is None, (key, day)
            else:
                assert day["uptime"] == pytest.approx(up / count, abs=1e-12), (key, day)
        assert shown["uptime"] == pytest.approx(total_up / total, abs=1e-12), key

    shop = service(page, "Online shop")
    outage = [day for day in shop["days"] if day["uptime"] is not None and day["uptime"] < 1]
    hours = (midnight_of(served.history.now, 9) - midnight_of(served.history.now, 10)) / 3600
    assert [day["date"] for day in outage] == [day_of(served.history.now, 10).isoformat()]
    assert [day["uptime"] for day in outage] == [pytest.approx(1 - 6 / hours)], "the one outage day: 6 hours of 24"
    docs = service(page, "Documentation")
    assert [day["uptime"] for day in docs["days"][-2:]] == [None, None], "no probe yesterday or today"


def test_the_page_shows_the_figures_the_test_computes(page: dict[str, Any], html_page: str) -> None:
    for shown in page["services"]:
        expected = floored_percent(shown["uptime"])
        assert f"{expected} uptime" in card(html_page, shown["title"]), shown["title"]
    shop = card(html_page, "Online shop")
    assert "Days below 100% (1)" in shop
    assert "<td>75%</td>" in shop
    assert shop.count('class="d-bad"') == 1
    assert shop.count('class="d-good"') == DAYS - 1


def test_open_incidents_show_service_severity_and_start_and_nothing_internal(
    served: Served, page: dict[str, Any], html_page: str
) -> None:
    incidents = page["incidents"]
    assert [(i["service"], i["severity"], i["acknowledged"]) for i in incidents] == [
        ("Online shop", "critical", True),  # two incidents: the worst severity, acknowledged by someone
        ("Public API", "warning", False),
    ]
    shop_since = served.history.now - 3600  # the earlier of the shop's two incidents
    assert incidents[0]["started_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(shop_since)))
    assert set(incidents[0]) == {"service", "severity", "started_at", "acknowledged"}
    for body in (html_page, json.dumps(page)):
        for text in [*HOSTILE.values(), *HOSTILE_ANNOTATIONS.values(), "hunter2", "db-7", "corp.internal",
                     "ProbeSlowQwerty", "ApiErrorsPlugh", "AdminDownFrobozz", "GhostAlert", "ghost-svc",
                     "InfoOnlyZork", "OldOutageGrue", "secret_metric", "alice", "fingerprint"]:  # fmt: skip
            assert text not in body, text
            assert text.lower() not in body.lower(), text


def test_maintenance_in_progress_and_planned_with_their_comment(page: dict[str, Any], html_page: str) -> None:
    windows = [(w["service"], w["comment"], w["in_progress"]) for w in page["maintenance"]]
    assert windows == [
        ("Search", "Reindexing the catalogue", True),
        ("Online shop", "Database upgrade: orders & payments paused <5 min", False),
    ]
    section = html_page.split('id="maintenance"', 1)[1].split("</section>", 1)[0]
    assert "Reindexing the catalogue" in section
    assert "Database upgrade: orders &amp; payments paused &lt;5 min" in section
    assert section.count(">In progress</span>") == 1
    assert section.count(">Planned</span>") == 1
    for hidden in ("Hidden admin work Xyzzy", "Long past Plover", "bob", "carol", "s-1", "s-2"):
        assert hidden not in html_page
    assert re.search(r"\d+ \w{3} \d{4}, \d\d:\d\d \u2013 \d\d:\d\d CET", section), "times in reports.timezone"


def test_the_page_is_self_contained(served: Served, html_page: str) -> None:
    response = served.exporter.get("/status")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "public, max-age=30"
    assert "<script" not in html_page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html_page), "nothing loaded from elsewhere"
    assert '<meta name="viewport"' in html_page
    assert '<html lang="en">' in html_page


def test_public_status_leaves_everything_else_protected(served: Served) -> None:
    exporter = served.exporter
    for path in ("/status", "/status.json"):
        assert exporter.get(path).status_code == 200
        assert httpx.head(exporter.url + path, timeout=10).status_code == 200
    for path in ("/", "/metrics", "/probe?target=http://127.0.0.1:1/&module=http_2xx", "/-/healthy", "/sd/probes",
                 "/status/", "/status.json/", "/status.html", "/STATUS", "/status/../metrics"):  # fmt: skip
        assert exporter.get(path).status_code == 401, path
    assert exporter.post("/alertmanager/webhook", json={}).status_code == 401
    assert exporter.post("/status").status_code == 401, "only reads are public"
    assert exporter.post("/-/reload").status_code == 401
    authorised = exporter.get("/metrics", auth=("admin", PASSWORD))
    assert authorised.status_code == 200


def test_a_protected_status_page_and_prometheus_down(served: Served) -> None:
    """status.public false: /status needs the password like everything else. Prometheus unreachable:
    still 200, the states "unknown", said plainly; incidents and maintenance still shown."""
    exporter = served.protected
    assert exporter.get("/status").status_code == 401
    assert exporter.get("/status.json").status_code == 401
    page = exporter.get("/status.json", auth=("admin", PASSWORD))
    assert page.status_code == 200
    data = page.json()
    assert {s["title"]: s["state"] for s in data["services"]} == {
        "Online shop": "unknown",
        "Public API": "unknown",
        "Payments": "unknown",
        "Search": "maintenance",  # known from the journal
        "Documentation": "unknown",
    }
    assert data["states_known"] is False
    assert data["overall"] == "unknown"
    assert all(day["uptime"] is None for s in data["services"] for day in s["days"])
    assert [i["service"] for i in data["incidents"]] == ["Online shop", "Public API"]
    html_response = exporter.get("/status", auth=("admin", PASSWORD))
    assert html_response.status_code == 200
    assert html_response.headers["cache-control"] == "private, max-age=30"
    text = html_response.text
    assert "The current state of some services is unknown" in text  # the headline
    assert "The monitoring system cannot be reached right now" in text
    assert ">Unknown</span>" in card(text, "Online shop")
    assert "Reindexing the catalogue" in text
    assert "Traceback" not in text
    assert "127.0.0.1" not in text


def test_a_disabled_status_page_is_not_found(served: Served) -> None:
    """status.enabled false: both paths are 404 (asked of the web layer in this process, with the
    config it would load: the auth in front of it is the one the tests above exercise)."""
    config = load_model(PulseConfig, "pulse.yml", pulse_config(served.prometheus.url, served.journal, public=True,
                                                               enabled=False))  # fmt: skip
    routes = Routes(Exporter(None, None, LoadedConfig(config, WebConfig(), None)))
    for path in ("/status", "/status.json"):
        response = asyncio.run(routes(Request("GET", path, {}, {}, b"", "127.0.0.1")))
        assert response.status == 404, path


def test_something_that_is_not_prometheus_is_unknown_too(served: Served) -> None:
    """prometheus.url answering 200 with something else (a proxy's page): states unknown, no 500."""
    with HttpCapture() as impostor:
        config = load_model(PulseConfig, "pulse.yml", pulse_config(impostor.url, served.journal, public=True))
        routes = Routes(Exporter(None, None, LoadedConfig(config, WebConfig(), None)))
        response = asyncio.run(routes(Request("GET", "/status.json", {}, {}, b"", "127.0.0.1")))
        assert impostor.deliveries(), "it was asked"
    assert response.status == 200
    page = json.loads(response.body)
    assert {s["state"] for s in page["services"]} == {"unknown"}
    assert page["states_known"] is False


def colour_share(picture: Path, colour: str) -> float:
    """The share of the picture's pixels drawn in `colour` (#rrggbb, give or take antialiasing)."""
    pixels = matplotlib.image.imread(picture)[:, :, :3]
    wanted = numpy.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return float((numpy.abs(pixels - wanted).max(axis=2) < 0.02).mean())


def test_the_page_in_a_browser(served: Served) -> None:
    """Headless Chromium draws the public page, wide and phone-sized: the banner, the bars (green, red for
    the bad days) are there. PULSE_STATUS_PICTURES=DIR keeps the pictures to look at (docs/status-page.png
    is the wide one)."""
    chromium = require_binary("chromium", "chromium-browser")
    keep = os.environ.get("PULSE_STATUS_PICTURES")
    url = f"{served.exporter.url}/status"
    for name, size in (("desktop", "1200,1600"), ("phone", "390,1400")):
        picture = served.directory / f"status-{name}.png"
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={picture}",
             f"--window-size={size}", f"--user-data-dir={served.directory / 'chromium'}", url],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert picture.exists(), f"{name}: no picture drawn"
        assert colour_share(picture, "#cf222e") > 0.005, f"{name}: the red banner and bars"
        assert colour_share(picture, "#2da44e") > 0.02, f"{name}: the green bars"
        if keep:
            shutil.copy(picture, Path(keep) / picture.name)


def test_the_days_are_the_time_zones_and_a_clock_change_makes_a_25_hour_day() -> None:
    noon_after_the_change = datetime(2026, 10, 26, 12, tzinfo=PARIS).timestamp()
    days = local_days(noon_after_the_change, 3, "Europe/Paris")
    assert [(day.date, day.seconds) for day in days] == [
        ("2026-10-24", 86400), ("2026-10-25", 90000), ("2026-10-26", 86400)
    ]  # fmt: skip
    assert datetime.fromtimestamp(days[0].start, PARIS).isoformat() == "2026-10-24T00:00:00+02:00"
    assert days[-1].end == midnight(date(2026, 10, 27))  # today's end is still to come
    assert [day.date for day in local_days(noon_after_the_change, 1, "Pacific/Kiritimati")] == ["2026-10-27"]


def test_an_open_incident_is_never_under_a_green_all_operational_banner() -> None:
    """The probes may pass while customers see errors (the alert that opened the incident is about them):
    with every service up and an incident open, the banner says both, in amber."""
    up = ServiceStatus("Online shop", "operational", 1.0, ())
    quiet = StatusPage("Status", 1_800_000_000.0, "UTC", 90, (up,), (), (), True, True, True)
    assert banner(quiet) == ("operational", "All services are operational")
    incident = PublicIncident("Online shop", "warning", 1_799_999_000.0, acknowledged=False)
    troubled = replace(quiet, incidents=(incident,))
    assert banner(troubled) == ("degraded", "All services are up; 1 incident under investigation")
    assert '<p class="banner b-degraded" role="status">All services are up; 1 incident' in render_html(troubled)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_landing_page_links_to_the_status_page_when_it_is_served(enabled: bool) -> None:
    text = f"prometheus: {{url: 'http://127.0.0.1:9'}}\nstatus: {{enabled: {str(enabled).lower()}}}\n"
    exporter = Exporter(None, None, LoadedConfig(load_model(PulseConfig, "pulse.yml", text), WebConfig(), None))
    assert ('<a href="status">Status page</a>' in landing_page(exporter)) is enabled
