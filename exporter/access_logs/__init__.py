"""The `logs:` section of pulse.yml: HTTP traffic counted from access logs (docs/access-logs.md).

`follower.py` follows files like `tail -F`; `formats/` turns lines into counts by raw values
(`batch.py`); `labels.py` bounds them (route, method, code); `series.py` keeps the counts;
`collector.py` runs the following in a background thread and serves the counts at scrape time.
"""
