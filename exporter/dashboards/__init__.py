"""Pulse's Grafana dashboards, as code: grafana/dashboards/*.json is generated from `boards/`.

A board is data (model.py: rows of panels, each with its queries, unit and description); grafana.py
turns it into Grafana's dashboard JSON, with the conventions every board shares (a `datasource`
variable, links between the boards, `$__rate_interval`). `pulse-exporter dashboards generate` writes the
files and a test regenerates them and fails on any difference. A panel's queries exist only here, so
the pictures in docs/ and the reports render the same queries Grafana shows.
"""
