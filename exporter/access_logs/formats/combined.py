"""The combined log format of nginx and Apache, optionally followed by nginx's `$request_time` and
`$upstream_response_time`:

    $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer"
    "$http_user_agent" [$request_time [$upstream_response_time]]

The times are read only when written with a decimal point (nginx writes `0.004`), so an Apache log
ending in `%D` (an integer of microseconds) or another field is never read as seconds. Apache's `-`
for zero bytes counts as 0. A request line that is not `METHOD /path ...` (a TLS handshake sent to a
plain-HTTP port, which nginx logs with 400) still counts, as method OTHER and route other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from exporter.access_logs.batch import Batch, Parser
from exporter.access_logs.config import LogConfig

# Our own fixed pattern, on bytes (no decoding per line); user patterns go through RE2 (regex.py).
# Quoted fields allow Apache's backslash escapes (`\"`), in the unrolled form that does not backtrack.
# No two neighbouring parts can match the same characters (the query starts at its `?`): a hostile
# 64 KiB line costs linear time, where overlapping classes (`[^ ?"]*[^ "]*`) took seconds.
_QUOTED = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
LINE = re.compile(
    rb"[^ ]+ [^ ]+ (?:[^ ]+|" + _QUOTED + rb") \[[^\]]*\] "
    rb'"(?:([A-Za-z]+) ([^ ?"]*)(?:\?[^ "]*)?(?: [^"]*)?|[^"\\]*(?:\\.[^"\\]*)*)" '
    rb"(\d{3}) (\d+|-) " + _QUOTED + rb" " + _QUOTED + rb"(?: (\d+\.\d+)(?: (\d+\.\d+))?)?"
)


def build(config: LogConfig) -> Parser:
    return parse


def parse(lines: Sequence[bytes], batch: Batch) -> None:
    # The hot loop: locals only, one regex match and a few dict updates per line.
    match = LINE.match
    requests, sizes, durations, upstream = batch.requests, batch.sizes, batch.durations, batch.upstream
    unparsed = 0
    for line in lines:
        found = match(line)
        if found is None:
            unparsed += 1
            if batch.sample is None:
                batch.sample = line
            continue
        method, path, code, size, request_time, upstream_time = found.groups()
        key = (method, path, code)
        requests[key] = requests.get(key, 0) + 1
        if size != b"-":
            sizes[key] = sizes.get(key, 0) + int(size)
        if request_time is not None:
            try:
                durations[key].append(request_time)
            except KeyError:
                durations[key] = [request_time]
            if upstream_time is not None:
                try:
                    upstream[key].append(upstream_time)
                except KeyError:
                    upstream[key] = [upstream_time]
    batch.unparsed += unparsed
