"""Pictures of the boards: each panel drawn from its own queries against a Prometheus, as Grafana would
show it. One source of truth for what a chart means, shared by `pulse-exporter dashboards render` and
the reports:

- units.py: a value as a panel's unit shows it (no matplotlib);
- data.py: a panel's data from Prometheus' API, series named by the legend templates (no matplotlib);
- charts.py: one panel drawn in a box of a figure (matplotlib, Agg, no pyplot);
- board.py: a board's main panels on its grid, as one PNG;
- cli.py: the command's arguments (light) and its run (imports the drawing when it runs).

matplotlib is the optional `render` extra: `pip install 'pulse-exporter[render]'`.
"""
