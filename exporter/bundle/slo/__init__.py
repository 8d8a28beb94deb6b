"""SLOs from specs: Sloth's `prometheus/v1` files in prometheus/slos/ become prometheus/rules/slos.yml.

spec.py reads and validates a spec (Sloth's keys, plus a few Pulse-only ones); generate.py turns specs
into recording rules named as Sloth names them and multi-window multi-burn-rate alerts routed as every
Pulse alert is. docs/slos.md explains both to users.
"""
