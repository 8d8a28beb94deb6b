"""Fuzzing the config loader: whatever the YAML, loading it ends in a config or a ConfigError.

Never another exception (a traceback at --config.check, a reload taken for successful), never a hang,
never unbounded memory: a reload runs inside the serving exporter. Inputs are the example configs and
configs like the tests' mutated as text and as data (values replaced by odd scalars, subtrees shared so
that the YAML gets anchors and aliases), the modules file likewise, and generated bombs: alias fans,
deep nesting, recursive aliases.

The budget is fixed and the run deterministic (derandomize, no database, no deadline): the same
examples every run. A hang is caught by an alarm; memory is measured with tracemalloc per example.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import re
import signal
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config.loader import ConfigError, load_model
from exporter.registry import PulseConfig

ROOT = Path(__file__).parent.parent
SEED_FILES = sorted(
    [*ROOT.glob("examples/*.yml"), ROOT / "examples/probes/pulse.yml", ROOT / "exporter/config/default.yml"]
)
# Configs in the style of the tests': every section and every prober, with cross-references.
TEST_LIKE_CONFIGS = [
    """\
collectors:
  host:
    filesystem: {exclude_mountpoints: '^/(dev|proc)($|/)', include_fstypes: '^ext4$'}
    disk: {include_devices: '^sd[a-z]$'}
    processes:
      - {name: erp, match: {cmdline: 'erp-server', name: java}}
      - name: db
        match: {exe: '/usr/bin/postgres'}
""",
    """\
probes:
  timeout_offset: 500ms
  allow: ['[a-z]+\\.example\\.com:443']
  modules:
    tcp_connect: {prober: tcp, timeout: 5s, tcp: {preferred_ip_protocol: ip4, query_response: [{expect: '^220'}]}}
    http_2xx:
      prober: http
      timeout: 10s
      http:
        valid_status_codes: [200, 204]
        method: POST
        headers: {X-Test: a}
        body_size_limit: 10MiB
        fail_if_body_not_matches_regexp: ['ok']
        basic_auth: {username: u, password: p}
    dns_a: {prober: dns, dns: {query_name: example.com, query_type: A, valid_rcodes: [NOERROR]}}
    icmp: {prober: icmp, icmp: {payload_size: 56, ttl: 64}}
    journey:
      prober: journey
      journey:
        steps:
          - {name: home, url: 'http://127.0.0.1:8081/', expect: {status: [200]}}
  targets:
    - {target: 'db.example.com:5432', module: tcp_connect, labels: {service: db}}
    - {target: 'http://127.0.0.1:8081/', module: http_2xx}
    - target: 8.8.8.8
      module: dns_a
""",
    """\
kpis:
  interval: 1m
  timeout: 10s
  series_limit: 100
  sources:
    shop: {dsn: 'sqlite:///shop.db', pool_size: 2, connect_timeout: 5s}
    pay: {url: 'http://127.0.0.1:9/api', bearer_token: '${HOME}', timeout: 3s}
  packs:
    - {pack: marketplace, source: shop, name_prefix: eu_, static_labels: {shop: eu}, interval: 30s, timeout: 5s}
  queries:
    - name: orders
      source: shop
      interval: 30s
      sql: SELECT status, count(*) AS n FROM orders WHERE id > :cursor GROUP BY status
      cursor: {column: id, initial: 0}
      metrics: [{name: shop_orders_total, type: counter, value: n, labels: [status], expire_after: 0s}]
    - name: payments
      source: pay
      schedule: '*/5 * * * *'
      request: {path: /stats, params: {a: b}}
      rows: 'items[*]'
      metrics: [{name: pay_ok, value: ok, labels: {method: method}, value_map: {'yes': 1, 'no': 0}}]
""",
]

ODD_SCALARS = [
    ".nan", "-.inf", ".inf", "9" * 400, "9" * 5000, "-" + "9" * 30, "99999999999999999999y", "0s", "-5s",
    "1e400", "1.0e400", "0", "-1", "~", "null", "true", "NO", "0x1F", "0o17", "1_000", "190:20:30",
    "2021-02-30", "2001-12-14t21:59:43.10-05:00", "!!binary aGVsbG8=", "!!binary 'not base64!'",
    "!!python/object:os.system", "!!python/name:os.system", "!!python/object/apply:os.system [id]",
    "!!set {a, b}", "!!omap [{a: 1}]", "!!float x", "!!int 12x", "!!str", "!!map", "!foo bar",
    "'${PULSE_FUZZ_SURELY_UNSET}'", "'${HOME}'", "'$${HOME}'", '"\\x00\\t\\u2028"', "''", "[]", "{}",
    "/dev/zero", "/dev/stdin", "/", "tcp", "http_2xx", "sqlite:///x.db", "'(a+)+$'", "'(?=x)'", "'\\\\'",
    "'\\udcff'", "&a x", "*a", "*undefined", "? [a, b]", "[[[[[[[[", "{{{{", "|", ">-", "---", "...",
]  # fmt: skip
TEXT_TOKENS = [*ODD_SCALARS, "\n", "\t", "- ", ": ", ", ", "#", "  ", "&a ", "*a", "<<: *a\n", "[", "]", "{", "}", '"']


def _seeds() -> list[tuple[str, Path]]:
    """(text, the directory it is read from: modules_file and *_file paths resolve there)."""
    seeds = [(path.read_text(encoding="utf-8"), path.parent) for path in SEED_FILES]
    return seeds + [(text, ROOT / "examples") for text in TEST_LIKE_CONFIGS]


SEEDS = _seeds()


class Hang(Exception):
    pass


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """A load that blocks (a FIFO, a runaway loop) fails the example instead of hanging the suite."""

    def ring(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"loading took more than {seconds}s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


MEMORY_LIMIT = 64 * 1024 * 1024  # per load: the worst a 4 MiB file within the node limit can cost is far below


def loads_or_reports(text: str, directory: Path) -> None:
    """The property: a config or a ConfigError; any other exception fails the example with its traceback."""
    tracemalloc.reset_peak()
    problems = ["(loaded)"]
    with alarm(30):
        try:
            load_model(PulseConfig, directory / "fuzzed.yml", text)
        except ConfigError as err:
            problems = err.problems
    assert problems
    assert all(problem.strip() for problem in problems)
    peak = tracemalloc.get_traced_memory()[1]
    assert peak < MEMORY_LIMIT, f"loading took {peak / 2**20:.0f} MiB"


@pytest.fixture(scope="module", autouse=True)
def traced_memory_and_seed_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ERP_DSN", "postgresql+psycopg://reader@127.0.0.1:9/erp")  # examples/erp-crm.yml; never used
        env.delenv("PULSE_FUZZ_SURELY_UNSET", raising=False)
        tracemalloc.start()
        try:
            yield
        finally:
            tracemalloc.stop()


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_seed_config_is_valid_so_mutations_start_from_a_working_config(seed: int) -> None:
    text, directory = SEEDS[seed]
    load_model(PulseConfig, directory / "seed.yml", text)


FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# ---------------------------------------------------------------------------------------------- text mutations


VALUE_SPAN = re.compile(r"(?<=: )[^,{}\[\]#\n]*[^,{}\[\]#\s]|(?<=- )[^,{}\[\]#:\n]+(?=\s*$)")


@st.composite
def mutated_text(draw: st.DrawFn, seeds: list[tuple[str, Path]], planted: str) -> tuple[str, Path]:
    """A seed with `planted` as one of its values, then up to four random edits."""
    text, directory = draw(st.sampled_from(seeds))
    lines = text.splitlines(keepends=True) or ["\n"]
    for step in range(draw(st.integers(1, 5))):
        # Mostly lines that say something (the planted value always lands in one): comments exercise little.
        content = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
        if step == 0:
            content = [i for i in content if VALUE_SPAN.search(lines[i])]
        if content and (step == 0 or draw(st.integers(0, 4)) > 0):
            index = draw(st.sampled_from(content))
        else:
            index = draw(st.integers(0, len(lines) - 1))
        operations = ["value", "delete", "duplicate", "insert", "splice", "indent", "truncate"]
        operation = "value" if step == 0 else draw(st.sampled_from(operations))
        line = lines[index]
        values = list(VALUE_SPAN.finditer(line))
        if operation == "value" and values:  # one value, block or flow style, so the rest still parses
            span = draw(st.sampled_from(values))
            scalar = planted if step == 0 else draw(st.sampled_from(ODD_SCALARS))
            lines[index] = line[: span.start()] + scalar + line[span.end() :]
        elif operation == "delete" and len(lines) > 1:
            del lines[index]
        elif operation == "duplicate":
            lines.insert(index, line)
        elif operation == "insert":
            indent = " " * draw(st.integers(0, 8))
            key = draw(st.sampled_from(["interval", "timeout", "module", "modules_file", "<<", "? x", "a", "0"]))
            lines.insert(index, f"{indent}{key}: {draw(st.sampled_from(ODD_SCALARS))}\n")
        elif operation == "splice":
            at = draw(st.integers(0, len(line)))
            lines[index] = line[:at] + draw(st.sampled_from(TEXT_TOKENS)) + line[at:]
        elif operation == "indent":
            lines[index] = " " * draw(st.integers(0, 6)) + line.lstrip(" ")
        elif operation == "truncate":
            lines[index] = line[: draw(st.integers(0, len(line)))]
    return "".join(lines), directory


def _short(value: object) -> str:
    # A set's repr follows the per-process hash seed; xdist workers must agree on every test id.
    text = "{" + ", ".join(sorted(map(repr, value))) + "}" if isinstance(value, (set, frozenset)) else repr(value)
    return text[:24]


# Every odd scalar is planted a few times (Hypothesis alone would favour the first ones of the list).
@pytest.mark.parametrize("planted", ODD_SCALARS, ids=_short)
@settings(FUZZ, max_examples=4)
@given(data=st.data())
def test_mutated_config_text_loads_or_is_a_config_error(planted: str, data: st.DataObject) -> None:
    loads_or_reports(*data.draw(mutated_text(SEEDS, planted)))


# ---------------------------------------------------------------------------------------------- data mutations

ODD_VALUES: list[Any] = [
    float("nan"), float("inf"), -float("inf"), 10**400, -(10**30), 0, -1, True, None, "", "0s", "-5s", "5x",
    "99999999999999999999y", "9" * 400, "9" * 5000, b"\x00\xff binary", datetime.date(2021, 2, 28),
    datetime.datetime(2021, 2, 28, 1, 2, 3),
    {"a", "b"}, [], {}, [[[[[]]]]], {"prober": "tcp"}, {1: 2, None: 3, 1.5: "x"}, "${PULSE_FUZZ_SURELY_UNSET}",
    "/dev/zero", "(a+)+$", "tcp_connect", "x" * 10_000,
]  # fmt: skip


def _paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*path, index))


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return data


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


PARSED_SEEDS = [(yaml.safe_load(text), directory) for text, directory in SEEDS]


@st.composite
def mutated_data(draw: st.DrawFn, planted: Any) -> tuple[str, Path]:
    """A seed's data with `planted` as one value, then values replaced, keys added and subtrees shared
    (dumped as anchors and aliases)."""
    seed, directory = draw(st.sampled_from(PARSED_SEEDS))
    data = copy.deepcopy(seed)
    for step in range(draw(st.integers(1, 4))):
        paths = list(_paths(data))
        leaves = [path for path in paths if not isinstance(_get(data, path), dict | list)]
        target = draw(st.sampled_from(leaves if leaves and (step == 0 or draw(st.booleans())) else paths))
        operation = "replace" if step == 0 else draw(st.sampled_from(["replace", "share", "add_key", "wrap"]))
        if operation == "replace":
            value = planted if step == 0 else draw(st.sampled_from(ODD_VALUES))
            data = _set(data, target, copy.deepcopy(value))
        elif operation == "share" and target:
            # The same object twice: yaml.safe_dump writes an anchor and an alias.
            other, shared = draw(st.sampled_from(paths)), _get(data, target)
            if not any(_get(data, other[:end]) is shared for end in range(len(other) + 1)):  # never inside itself
                data = _set(data, other, shared)
        elif operation == "add_key" and isinstance(_get(data, target), dict):
            key = draw(st.sampled_from(["interval", "timeout", "modules_file", "dsn_file", "extra", 7, None]))
            _get(data, target)[key] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        elif operation == "wrap":
            data = _set(data, target, [_get(data, target)] * draw(st.integers(1, 3)))
    return yaml.safe_dump(data, allow_unicode=draw(st.booleans()), default_flow_style=draw(st.booleans())), directory


@pytest.mark.parametrize("planted", ODD_VALUES, ids=_short)
@settings(FUZZ, max_examples=5)
@given(data=st.data())
def test_mutated_config_data_loads_or_is_a_config_error(planted: Any, data: st.DataObject) -> None:
    loads_or_reports(*data.draw(mutated_data(planted)))


# ---------------------------------------------------------------------------------------------- the modules file

BLACKBOX_SEEDS = [((ROOT / "examples/probes/blackbox.yml").read_text(encoding="utf-8"), ROOT / "examples/probes")]


@pytest.mark.parametrize("planted", ODD_SCALARS, ids=_short)
@settings(FUZZ, max_examples=2)
@given(data=st.data())
def test_a_mutated_modules_file_loads_or_is_a_config_error(
    planted: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    text, _ = data.draw(mutated_text(BLACKBOX_SEEDS, planted))
    directory = tmp_path_factory.mktemp("modules")
    (directory / "blackbox.yml").write_text(text, encoding="utf-8")
    loads_or_reports("probes:\n  modules_file: blackbox.yml\n", directory)


# ---------------------------------------------------------------------------------------------- bombs


def alias_fan(width: int, levels: int, leaf: str) -> str:
    lines = [f"l0: &l0 [{', '.join([leaf] * width)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def nesting(depth: int, opener: str) -> str:
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    if opener == "- ":
        return "".join("  " * level + "- \n" for level in range(depth)) + "  " * depth + "- x\n"
    return "a: " + opener * depth + "x" + closer * depth + "\n"


bombs = st.one_of(
    st.builds(alias_fan, st.integers(2, 12), st.integers(1, 10), st.sampled_from(['"lol"', "{a: b}", "[x, y]"])),
    st.builds(nesting, st.integers(1, 5000), st.sampled_from(["[", "{a: ", "- "])),
    st.builds(lambda depth: "a: &a " + "[" * depth + "*a" + "]" * depth + "\n", st.integers(1, 50)),
    st.builds(lambda width: "a: &a {" + ", ".join(f"k{i}: *a" for i in range(width)) + "}\n", st.integers(1, 5)),
    st.builds(lambda n: "m: &m {x: 1}\nlist: [" + ", ".join(["*m"] * n) + "]\n", st.integers(1, 30_000)),
    st.builds(lambda n: "k: " + base64.b64encode(b"\x00" * n).decode() + "\n", st.integers(0, 10_000)),
)


@settings(FUZZ, max_examples=60)
@given(bombs)
def test_yaml_bombs_and_deep_nesting_are_config_errors_at_once(text: str) -> None:
    loads_or_reports(text, ROOT)
