"""Turn a YAML file into a validated config model, or into errors a person can act on.

Every error names the file, the line, the field path and the problem, e.g.

    pulse.yml:14: collectors.host.filesystem.exclude_mountpoints: not a valid regular expression (...)

PyYAML's node tree still knows where each key stood, so we keep a map from field path to line and
look up pydantic's error locations in it. `${VAR}` is replaced by the environment variable VAR in
every string value (`$${` writes a literal `${`), before validation, so numbers and booleans work too.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

Path_ = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

_ENV_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """A config file that cannot be used. `str()` is the full, user-facing report."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(problems))


def load_model(model: type[ModelT], source: str | Path, text: str | None = None) -> ModelT:
    """Read `source` (a path, or a name for `text`) and validate it against `model`."""
    name = str(source)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(name, [f"{name}: cannot read config file: {err.strerror or err}"]) from None
        except UnicodeDecodeError as err:
            raise ConfigError(name, [f"{name}: config file is not UTF-8 text: {err}"]) from None

    data, lines = parse_yaml(name, text)
    data = interpolate_env(name, data, lines)
    try:
        return model.model_validate(data if data is not None else {}, context={"base_dir": Path(name).parent})
    except pydantic.ValidationError as err:
        raise ConfigError(name, [_describe(name, model, e, lines) for e in err.errors()]) from None


def parse_yaml(name: str, text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse one YAML document; return the data and a map from field path to 1-based line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{name}:{mark.line + 1}" if mark else name
        raise ConfigError(name, [f"{where}: not valid YAML: {err.problem or err.context}"]) from None
    except yaml.YAMLError as err:
        raise ConfigError(name, [f"{name}: not valid YAML: {err}"]) from None
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
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{name}:{mark.line + 1}" if mark else name
        raise ConfigError(name, [f"{where}: not valid YAML: {err.problem}"]) from None
    finally:
        loader.dispose()


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Iterator[tuple[Path_, int]]:
    """Fill `lines`; yield (path, line) for every key that repeats within one mapping."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
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
                escaped, var = match.groups()
                if escaped:
                    return "${" + var + "}"
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


def _describe(name: str, model: type[pydantic.BaseModel], error: Any, lines: dict[Path_, int]) -> str:
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
    if typing.get_origin(current) in (typing.Union, types.UnionType):  # e.g. `TlsServerConfig | None`
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
