"""Demo applications to try Pulse on (not used by the exporter itself)."""
