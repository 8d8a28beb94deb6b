"""Reports: what happened over a day, a week or a month, from Prometheus and the incident journal, as
HTML (charts embedded), PDF and JSON."""
