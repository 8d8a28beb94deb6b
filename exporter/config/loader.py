"""Turn a YAML file into a validated config model, or into errors a person can act on.

Every error names the file, the line, the field path and the problem, e.g.

    pulse.yml:14: collectors.host.filesystem.exclude_mountpoints: not a valid regular expression (...)

PyYAML's node tree still knows where each key stood, so we keep a map from field path to line and
look up pydantic's error locations in it. `${VAR}` is replaced by the environment variable VAR in
every string value (`$${` writes a literal `${`), before validation, so numbers and booleans work too;
`${VAR:-default}` gives `default` when VAR is unset or empty.

Loading a config must never hurt the running exporter (a reload happens inside it), so the input is
bounded before anything grows with it: only a regular file of at most 4 MiB is read (a FIFO or
/dev/zero would hang or exhaust memory), nesting stops at 100 levels (deeper would exhaust Python's
stack), a document stops at 200,000 nodes counting what aliases expand to, and aliases may add at
most 10,000 nodes or as many as the file writes out itself (a 272-byte "billion laughs" would expand
to half a million). A recursive alias (`a: &a [*a]`) is refused. Each limit is a located ConfigError.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic
import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import Resolver

Path_ = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

# `${VAR}`, or `${VAR:-default}` (as in the shell and docker compose: the default when VAR is unset or empty).
_ENV_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 100
MAX_NODES = 200_000
ALIAS_NODES_FREE = 10_000  # aliases may always add this many nodes; beyond it, no more than the file writes


class ConfigError(Exception):
    """A config file that cannot be used. `str()` is the full, user-facing report."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(problems))


class UnreadableFile(ValueError):
    """A file that cannot be a config file; the message is the reason (no file name)."""


def read_text_file(path: str | Path) -> str:
    """A regular file's UTF-8 text, at most MAX_FILE_BYTES. Opened non-blocking so that a FIFO
    (which would wait for a writer) is refused by fstat instead of hanging the reload."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        raise UnreadableFile(err.strerror or str(err)) from None
    except ValueError as err:  # a NUL byte in the path
        raise UnreadableFile(str(err)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(f"it is {_file_kind(mode)}, not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        raise UnreadableFile(err.strerror or str(err)) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFile(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, the limit for a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnreadableFile(f"not UTF-8 text ({err})") from None


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def load_model(model: type[ModelT], source: str | Path, text: str | None = None) -> ModelT:
    """Read `source` (a path, or a name for `text`) and validate it against `model`.

    An empty file (or one holding only comments) is an empty mapping: every section takes its defaults.
    """
    name = str(source)
    if text is None:
        try:
            text = read_text_file(source)
        except UnreadableFile as err:
            raise ConfigError(name, [f"{name}: cannot read config file: {err}"]) from None

    data, lines = parse_yaml(name, text)
    data = interpolate_env(name, data, lines)
    try:
        return model.model_validate(data if data is not None else {}, context={"base_dir": Path(name).parent})
    except pydantic.ValidationError as err:
        problems = describe_validation_errors(name, model, err, lines)
        raise ConfigError(name, sorted(problems, key=lambda problem: _line_of(name, problem))) from None


def _line_of(name: str, problem: str) -> int:
    """Problems are listed in the order of the file; those without a line come first."""
    line = problem.removeprefix(f"{name}:").partition(":")[0]
    return int(line) if line.isdigit() else 0


class LimitExceeded(yaml.MarkedYAMLError):
    """YAML that parses, but exceeds what a config may cost to load (depth, size, alias expansion)."""


def _limit(problem: str, event: yaml.Event) -> LimitExceeded:
    mark: Any = event.start_mark  # libyaml's Mark or PyYAML's: both have .line
    return LimitExceeded(None, None, problem, mark)


class _BoundedComposer(Composer):
    """PyYAML's composer, counting as it goes: nesting depth and the number of nodes the document
    stands for once aliases are expanded. The node graph itself shares aliased nodes, so counting is
    cheap; it is everything after (constructing, indexing lines, validating) that would expand them."""

    if TYPE_CHECKING:  # provided by the parser it is combined with

        def peek_event(self) -> yaml.Event: ...

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._cost: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes once expanded, depth)
        self._written = 0
        self._aliased = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                raise _limit(f"alias *{event.anchor} is used inside the node it names (a recursive structure)", event)
            node = super().compose_node(parent, index)  # PyYAML reports an undefined alias
            assert node is not None
            size, depth = self._cost[id(node)]
            self._aliased += size
            self._check(event, self._depth + depth)
            if self._aliased > max(ALIAS_NODES_FREE, self._written):
                raise _limit(
                    f"aliases expand to {self._aliased} nodes by here, from {self._written} written out; "
                    f"at most {ALIAS_NODES_FREE}, or as many as are written out, may come from aliases",
                    event,
                )
            return node
        self._check(event, self._depth + 1)
        anchor: str | None = getattr(event, "anchor", None)
        if anchor is not None:
            self._open_anchors.add(anchor)
        self._depth += 1
        node = super().compose_node(parent, index)
        self._depth -= 1
        if anchor is not None:
            self._open_anchors.discard(anchor)
        assert node is not None
        self._written += 1
        self._cost[id(node)] = self._measure(node)
        return node

    def _measure(self, node: yaml.Node) -> tuple[int, int]:
        if isinstance(node, yaml.SequenceNode):
            children = [self._cost[id(child)] for child in node.value]
        elif isinstance(node, yaml.MappingNode):
            children = [self._cost[id(part)] for pair in node.value for part in pair]
        else:
            return 1, 1
        return 1 + sum(size for size, _ in children), 1 + max((depth for _, depth in children), default=0)

    def _check(self, event: yaml.Event, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _limit(f"nested deeper than {MAX_DEPTH} levels", event)
        if self._written + self._aliased >= MAX_NODES:
            raise _limit(f"more than {MAX_NODES} YAML nodes (values, lists, mappings; aliases expanded)", event)


class _Constructor(SafeConstructor):
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """SafeConstructor, with a value it cannot build (a 5000-digit int, 2021-02-30) reported at its line."""
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as err:  # ValueError, OverflowError, TypeError from a value's builder
            raise ConstructorError(None, None, f"cannot read this value ({err})", node.start_mark) from None


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _Loader(_BoundedComposer, CParser, _Constructor, Resolver):
        """libyaml parses (4x faster than pure Python); composing stays in Python, where it is bounded."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            _BoundedComposer.__init__(self)
            _Constructor.__init__(self)
            Resolver.__init__(self)

else:  # pragma: no cover - PyYAML without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, _BoundedComposer, _Constructor, Resolver):  # type: ignore[no-redef]
        def __init__(self, text: str) -> None:
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)
            _BoundedComposer.__init__(self)
            _Constructor.__init__(self)
            Resolver.__init__(self)


def parse_yaml(name: str, text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse one YAML document; return the data and a map from field path to 1-based line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except LimitExceeded as err:
        raise ConfigError(name, [f"{_at(name, err)}: {err.problem}"]) from None
    except yaml.MarkedYAMLError as err:
        raise ConfigError(name, [f"{_at(name, err)}: not valid YAML: {err.problem or err.context}"]) from None
    except yaml.YAMLError as err:
        raise ConfigError(name, [f"{name}: not valid YAML: {err}"]) from None
    finally:
        loader.dispose()
    if node is None:
        return None, {}

    lines: dict[Path_, int] = {(): node.start_mark.line + 1}
    duplicates = list(_index_lines(node, (), lines))
    if duplicates:
        raise ConfigError(
            name,
            [
                f"{name}:{line}: {_dotted(path)}: key given twice (the second would hide the first)"
                for path, line in duplicates
            ],
        )
    return data, lines


def _at(name: str, err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark or err.context_mark
    return f"{name}:{mark.line + 1}" if mark else name


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Iterator[tuple[Path_, int]]:
    """Fill `lines`; yield (path, line) for every key that repeats within one mapping."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            # Keys that built (hashable) are scalars; the tag stands in for anything else, never a repr.
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else key_node.tag
            child = (*path, key)
            if child in lines:
                yield child, key_node.start_mark.line + 1
            lines[child] = key_node.start_mark.line + 1
            yield from _index_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            yield from _index_lines(item, (*path, index), lines)


def interpolate_env(name: str, data: Any, lines: dict[Path_, int]) -> Any:
    """Replace `${VAR}` in every string value; an unset variable is an error naming the field."""
    problems: list[str] = []

    def walk(value: Any, path: Path_) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:

            def substitute(match: re.Match[str]) -> str:
                escaped, var, default = match.groups()
                if escaped:
                    return match.group(0)[1:]
                if default is not None and not os.environ.get(var):
                    return default
                if var not in os.environ:
                    problems.append(f"{_where(name, path, lines)}: environment variable {var} is not set")
                    return ""
                return os.environ[var]

            return _ENV_REFERENCE.sub(substitute, value)
        return value

    result = walk(data, ())
    if problems:
        raise ConfigError(name, problems)
    return result


def describe_validation_errors(
    name: str, model: type[pydantic.BaseModel], err: pydantic.ValidationError, lines: dict[Path_, int]
) -> list[str]:
    """`err`'s problems as the user reads them: "file:line: key: message", in pydantic's order; `lines`
    (from parse_yaml) locates the keys of the file `name` that was validated against `model`."""
    return [_describe_error(name, model, error, lines) for error in err.errors()]


def _describe_error(name: str, model: type[pydantic.BaseModel], error: Any, lines: dict[Path_, int]) -> str:
    path: Path_ = tuple(p for p in error["loc"] if not _is_union_tag(p))
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if error["type"] == "extra_forbidden":
        known = _field_names(model, path[:-1])
        close = difflib.get_close_matches(str(path[-1]), known, n=1)
        message = "unknown field" + (f" (did you mean '{close[0]}'?)" if close else "")
        if known and not close:
            message += f"; known fields: {', '.join(sorted(known))}"
    elif error["type"] == "missing":
        message = "required field is missing"
    else:
        # A model-level check may blame one of its fields as "field: problem"; point at that field.
        field, sep, rest = message.partition(": ")
        if sep and (*path, field) in lines:
            path, message = (*path, field), rest
    return f"{_where(name, path, lines)}: {message}"


def _is_union_tag(part: str | int) -> bool:
    # pydantic inserts the union member it tried into the location, e.g. "function-before[_compile(), str]";
    # a config key cannot look like that, so a user's own key is never dropped.
    return isinstance(part, str) and "[" in part


def _where(name: str, path: Path_, lines: dict[Path_, int]) -> str:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            location = f"{name}:{lines[path[:end]]}"
            break
    else:
        location = name
    return f"{location}: {_dotted(path)}" if path else location


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _field_names(model: type[pydantic.BaseModel], path: Path_) -> list[str]:
    """The field names a model accepts at `path`, for 'did you mean' hints."""
    current: Any = model
    for part in path:
        current = _unwrap(current, part)
        if current is None:
            return []
    if typing.get_origin(current) in (typing.Union, types.UnionType):  # e.g. `TLSServerConfig | None`
        current = next((a for a in typing.get_args(current) if _is_model(a)), None)
    if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
        names = []
        for field_name, field in current.model_fields.items():
            names.append(field.alias or field_name)
            if getattr(field, "json_schema_extra", None) == {"secret": True}:
                names.append(f"{field_name}_file")
        return names
    return []


def _unwrap(annotation: Any, part: str | int) -> Any:
    """Follow one path step through models, lists, dicts and optionals."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0], part)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _unwrap(arg, part)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel) and isinstance(part, str):
        field = annotation.model_fields.get(part)
        return field.annotation if field else None
    if origin in (list, tuple) and isinstance(part, int):
        return typing.get_args(annotation)[0]
    if origin is dict:
        return typing.get_args(annotation)[1]
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)
