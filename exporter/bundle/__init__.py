"""Pulse's Prometheus rules, generated: the alerting and recording rules of `prometheus/rules/`.

The rules are written once, here, as code; the values a user tunes (thresholds, the jobs' selectors,
where runbooks and dashboards live) are read from one file, `prometheus/settings.yml`. `pulse-exporter
rules generate` writes the rule files, and a test regenerates them and fails on any difference, as the
monitoring mixins do with jsonnet.

Each rule set (probes, host, business, ...) is one module of `sets/` declaring `RULE_SET`; `sets/__init__`
lists them, and the settings file gets one section per set. Adding a set touches one module and one
line of that list.
"""
