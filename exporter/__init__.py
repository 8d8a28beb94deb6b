"""Pulse: a Prometheus exporter for business platforms."""

__version__ = "0.1.0"
