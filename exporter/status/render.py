"""The status page as HTML: one self-contained document (inline CSS, no script, no font, no image from
anywhere), readable on a phone (the last 30 days' bars below 640 px) and by a screen reader (each
state said in words, each bar row summarised in its label, the days with downtime in a table).

Every text is escaped: titles and maintenance comments are written by people.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from html import escape
from zoneinfo import ZoneInfo

from exporter.status.page import Day, PublicIncident, PublicMaintenance, ServiceStatus, State, StatusPage

STATE_WORDS: dict[State, str] = {
    "operational": "Operational",
    "degraded": "Degraded",
    "down": "Down",
    "maintenance": "Under maintenance",
    "unknown": "Unknown",
}
HEADLINES: dict[State, str] = {
    "operational": "All services are operational",
    "degraded": "Some services are degraded",
    "down": "Some services are down",
    "maintenance": "Maintenance in progress",
    "unknown": "The current state of some services is unknown",
}
GOOD_DAY = 0.999  # a day at or above this is drawn green, at or above FAIR_DAY amber, below it red
FAIR_DAY = 0.99
PHONE_DAYS = 30  # bars shown on a narrow screen

CSS = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa}
main{max-width:52rem;margin:0 auto;padding:1.5rem 1rem 2rem}
h1{font-size:1.6rem;margin:0 0 1rem}
h2{font-size:1.15rem;margin:2rem 0 .6rem}
h3{font-size:1rem;margin:0;font-weight:600}
.banner{margin:0;padding:.9rem 1.1rem;border-radius:.5rem;font-weight:600;font-size:1.1rem;color:#fff}
.b-operational{background:#1a7f37}.b-degraded{background:#9a6700}.b-down{background:#cf222e}
.b-maintenance{background:#0969da}.b-unknown{background:#57606a}
.note{margin:.6rem 0 0;padding:.6rem .9rem;border-left:4px solid #57606a;background:#fff;color:#1f2328}
.card{background:#fff;border:1px solid #d0d7de;border-radius:.5rem;padding:.8rem 1rem;margin:0 0 .6rem;list-style:none}
ul.plain{padding:0;margin:0}
.none{color:#57606a;margin:0}
.head{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.2rem 1rem;align-items:baseline}
.state{font-weight:600;white-space:nowrap}
.s-operational{color:#1a7f37}.s-degraded{color:#9a6700}.s-down{color:#cf222e}.s-maintenance{color:#0969da}
.s-unknown{color:#57606a}
.bars{display:flex;gap:2px;height:2.2rem;margin:.6rem 0 .2rem}
.bars span{flex:1 1 0;min-width:0;border-radius:2px}
.d-good{background:#2da44e}.d-fair{background:#d4a72c}.d-bad{background:#cf222e}.d-none{background:#d0d7de}
.scale{display:flex;justify-content:space-between;font-size:.85rem;color:#57606a}
.scale .uptime{color:#1f2328;font-weight:600}
.short{display:none}
details{margin-top:.4rem;font-size:.9rem}
summary{cursor:pointer;color:#0969da}
table{border-collapse:collapse;margin:.4rem 0 0}
th,td{text-align:left;padding:.15rem 1.2rem .15rem 0;border-bottom:1px solid #d8dee4}
.sev{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:.85rem;font-weight:600;color:#fff}
.sev-critical{background:#cf222e}.sev-warning{background:#9a6700}.sev-maintenance{background:#0969da}
.sev-planned{background:#fff;color:#0969da;box-shadow:inset 0 0 0 1px #0969da}
.when{color:#57606a;font-size:.95rem}
.comment{margin:.3rem 0 0}
.legend{display:flex;flex-wrap:wrap;gap:.3rem 1rem;font-size:.85rem;color:#57606a;margin:.2rem 0 0;padding:0}
.legend li{list-style:none}
.legend span{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:-.1rem}
footer{margin-top:2rem;font-size:.85rem;color:#57606a}
@media (max-width:640px){
 main{padding:1rem .6rem}
 h1{font-size:1.35rem}
 .bars span:nth-last-child(n+PHONE_PLUS_ONE){display:none}
 .long{display:none}.short{display:inline}
}
""".replace("PHONE_PLUS_ONE", str(PHONE_DAYS + 1))


def banner(page: StatusPage) -> tuple[str, str]:
    """The headline and its colour: the worst state, but an open incident is never under a green "all
    operational" (the probes may pass while customers see errors)."""
    if page.overall == "operational" and page.incidents:
        count = len(page.incidents)
        return "degraded", f"All services are up; {count} incident{'s' if count > 1 else ''} under investigation"
    return page.overall, HEADLINES[page.overall]


def render_html(page: StatusPage) -> str:
    zone = ZoneInfo(page.timezone)
    tone, headline = banner(page)
    notes = []
    if not page.states_known:
        notes.append(
            "The monitoring system cannot be reached right now, so the current state of the services is unknown. "
            "This does not mean they are down."
        )
    elif not page.history_known:
        notes.append("The uptime history cannot be read right now.")
    if not page.journal_known:
        notes.append("Incidents and planned maintenance cannot be shown right now.")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(page.title)}</title>
<style>{CSS}</style></head>
<body><main>
<h1>{escape(page.title)}</h1>
<p class="banner b-{tone}" role="status">{escape(headline)}</p>
{"".join(f'<p class="note">{escape(note)}</p>' for note in notes)}
<section aria-labelledby="incidents"><h2 id="incidents">Current incidents</h2>
{_incidents(page, zone)}</section>
<section aria-labelledby="maintenance"><h2 id="maintenance">Planned maintenance</h2>
{_maintenance(page, zone)}</section>
<section aria-labelledby="services"><h2 id="services">Services</h2>
{_legend()}
<ul class="plain">{"".join(_service(service, page) for service in page.services)}</ul>
{"" if page.services else '<p class="none">No service is listed.</p>'}</section>
<footer>Updated {escape(_moment(page.generated_at, zone))}. Uptime is the share of successful checks
(days and times in {escape(page.timezone)}).</footer>
</main></body></html>
"""


def _incidents(page: StatusPage, zone: ZoneInfo) -> str:
    if not page.journal_known:
        return '<p class="none">Not available right now.</p>'
    if not page.incidents:
        return '<p class="none">No incidents right now.</p>'
    return '<ul class="plain">' + "".join(_incident(i, zone) for i in page.incidents) + "</ul>"


def _incident(incident: PublicIncident, zone: ZoneInfo) -> str:
    progress = "Our team is working on it." if incident.acknowledged else "We are investigating."
    return (
        f'<li class="card"><div class="head"><h3>{escape(incident.service)}</h3>'
        f'<span class="sev sev-{incident.severity}">{incident.severity.capitalize()}</span></div>'
        f'<p class="when comment">Since {escape(_moment(incident.started_at, zone))}. {progress}</p></li>'
    )


def _maintenance(page: StatusPage, zone: ZoneInfo) -> str:
    if not page.journal_known:
        return '<p class="none">Not available right now.</p>'
    if not page.maintenance:
        return '<p class="none">No maintenance planned.</p>'
    return '<ul class="plain">' + "".join(_window(w, page, zone) for w in page.maintenance) + "</ul>"


def _window(window: PublicMaintenance, page: StatusPage, zone: ZoneInfo) -> str:
    if page.in_progress(window):
        badge = '<span class="sev sev-maintenance">In progress</span>'
    else:
        badge = '<span class="sev sev-planned">Planned</span>'

    return (
        f'<li class="card"><div class="head"><h3>{escape(window.service)}</h3>{badge}</div>'
        f'<p class="when comment">{escape(_span(window.starts_at, window.ends_at, zone))}</p>'
        f'<p class="comment">{escape(window.comment)}</p></li>'
    )


def _legend() -> str:
    items = [
        ("d-good", f"{_percent(GOOD_DAY)} or more"),
        ("d-fair", f"{_percent(FAIR_DAY)} or more"),
        ("d-bad", f"below {_percent(FAIR_DAY)}"),
        ("d-none", "no data"),
    ]
    cells = "".join(f'<li><span class="{css}"></span>{text}</li>' for css, text in items)
    return f'<ul class="legend" aria-label="Colours of the daily bars">{cells}</ul>'


def _service(service: ServiceStatus, page: StatusPage) -> str:
    measured = [day for day in service.days if day.uptime is not None]
    short_of_full = [day for day in measured if day.uptime is not None and day.uptime < 1]
    if service.uptime is None:
        summary = f"No uptime data for the last {page.days} days."
        figure = "no data"
    else:
        figure = f"{_percent(service.uptime)} uptime ({page.days} days)"  # also under the 30 bars of a phone
        summary = (
            f"Uptime {_percent(service.uptime)} over the last {page.days} days; "
            f"{len(short_of_full)} of {len(measured)} days with data below 100%."
        )
    bars = "".join(f'<span class="{_day_class(day)}" title="{escape(_day_text(day))}"></span>' for day in service.days)
    oldest = f"{page.days} days ago" if page.days > 1 else "Today"
    scale_start = f'<span class="long">{oldest}</span>'
    if page.days > PHONE_DAYS:
        scale_start += f'<span class="short">{PHONE_DAYS} days ago</span>'
    details = ""
    if short_of_full:
        rows = "".join(
            f"<tr><td>{_date(day.date)}</td><td>{_percent(day.uptime)}</td></tr>"
            for day in reversed(short_of_full)
            if day.uptime is not None
        )
        details = (
            f"<details><summary>Days below 100% ({len(short_of_full)})</summary>"
            f"<table><thead><tr><th scope=col>Day</th><th scope=col>Uptime</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></details>"
        )
    return (
        f'<li class="card"><div class="head"><h3>{escape(service.title)}</h3>'
        f'<span class="state s-{service.state}">{STATE_WORDS[service.state]}</span></div>'
        f'<div class="bars" role="img" aria-label="{escape(summary)}">{bars}</div>'
        f'<div class="scale" aria-hidden="true">{scale_start}<span class="uptime">{figure}</span>'
        f"<span>Today</span></div>{details}</li>"
    )


def _day_class(day: Day) -> str:
    if day.uptime is None:
        return "d-none"
    if day.uptime >= GOOD_DAY:
        return "d-good"
    return "d-fair" if day.uptime >= FAIR_DAY else "d-bad"


def _day_text(day: Day) -> str:
    return f"{_date(day.date)}: " + ("no data" if day.uptime is None else f"{_percent(day.uptime)} up")


def _percent(ratio: float) -> str:
    """Rounded down, so that 99.999% never reads as 100%: only a full day shows 100%."""
    if ratio >= 1:
        return "100%"
    hundredths = math.floor(round(ratio * 10000, 6)) / 100  # round first: 0.9972 is 99.72, not 99.71
    return f"{hundredths:.2f}".rstrip("0").rstrip(".") + "%"


def _date(iso_date: str) -> str:
    day = date.fromisoformat(iso_date)
    return f"{day:%a} {day.day} {day:%b %Y}"


def _moment(seconds: float, zone: ZoneInfo) -> str:
    moment = datetime.fromtimestamp(seconds, zone)
    return f"{moment.day} {moment:%b %Y, %H:%M %Z}"


def _span(start: float, end: float, zone: ZoneInfo) -> str:
    begins, ends = datetime.fromtimestamp(start, zone), datetime.fromtimestamp(end, zone)
    if begins.date() == ends.date() and begins.tzname() == ends.tzname():
        return f"{begins.day} {begins:%b %Y, %H:%M} \u2013 {ends:%H:%M %Z}"
    return f"{_moment(start, zone)} \u2013 {_moment(end, zone)}"
