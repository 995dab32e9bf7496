"""Build frozen dataclasses from plain mappings, with type checks and helpful errors.

A config file is a YAML mapping whose top-level keys are sections (``dataset:``, later
``model:``, ``training:``); each section maps onto a frozen dataclass. The rules:

- unknown keys are errors that list the valid keys (and the closest match), so a typo never
  silently falls back to a default;
- values are checked against the field's type annotation: ``int``, ``float`` (ints accepted),
  ``str``, ``bool``, ``X | None``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``Literal[...]``,
  ``dict[str, X]`` and nested dataclasses;
- ``key=value`` overrides use dotted paths (``dataset.time.step_hours=12``) and YAML syntax for
  the value (``dataset.variables=[geopotential,temperature]``);
- YAML is read by :func:`read_yaml`: a safe loader that keeps dates such as ``2000-01-01`` as the
  strings the config fields expect, and a syntax error is a ValueError naming the line and column.
"""

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without the implicit timestamp type: ``2000-01-01`` stays a string (the
    config's time fields are ISO strings, checked where they are defined)."""


_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(text: str, where: str) -> Any:
    """The plain data (mappings, lists, scalars) of the YAML ``text``; ``where`` names it in errors.

    Safe (no Python tags run) and without implicit dates; a syntax error is a ValueError that gives
    the line and column of the problem."""
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # a yaml.SafeLoader: no Python tags run
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{where} is not valid YAML{place}: {problem}; fix the syntax there") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The sections of the YAML config file ``path`` (an empty file gives {}); ValueError when the
    file is missing, is not YAML or is not a mapping of sections."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist; presets live in configs/*.yaml")
    data = read_yaml(path.read_text(), f"config file {path}") or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _suggest(name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_value(value: Any, annotation: Any, where: str) -> Any:
    """``value`` converted to ``annotation`` (tuples from lists, floats from ints) or a TypeError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected a mapping for section {annotation.__name__}, got {value!r}")
        return from_dict(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _check_value(value, option, where)
            except (TypeError, ValueError) as error:
                errors.append(str(error))
        raise TypeError(f"{where}: {value!r} matches none of {annotation}: " + "; ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(
                f"{where}: {value!r} is not one of {list(args)}{_suggest(str(value), [str(a) for a in args])}"
            )
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} items, got {len(value)}: {value!r}")
        return tuple(
            _check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = args
        return {
            _check_value(k, key_type, f"{where} key"): _check_value(v, value_type, f"{where}.{k}")
            for k, v in value.items()
        }
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int or annotation is str or annotation is bool:
        if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
            raise TypeError(
                f"{where}: expected {annotation.__name__}, got {value!r} ({type(value).__name__})"
            )
        return value
    raise TypeError(f"{where}: unsupported annotation {annotation!r} (internal: extend _check_value)")


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """An instance of the dataclass ``cls`` from ``data``; unknown keys and wrong types are errors."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{where or cls.__name__}: expected a mapping, got {data!r}")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"from_dict builds dataclasses; {cls!r} is not a dataclass type")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        hint = _suggest(str(unknown[0]), list(fields))
        raise ValueError(
            f"{where or cls.__name__}: unknown key(s) {unknown}{hint}; valid keys are {sorted(fields)}"
        )
    missing = [
        name
        for name, f in fields.items()
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{where or cls.__name__}: required key(s) {missing} are missing")
    values = {k: _check_value(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**values)


def to_dict(config: Any) -> Any:
    """Plain YAML-safe data (dicts, lists, scalars) from a (nested) config dataclass."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, tuple | list):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of the nested mapping ``data`` with ``dotted.key=value`` overrides applied.

    Values are parsed as YAML (:func:`read_yaml`: ``12`` → int, ``[a, b]`` → list, ``null`` → None).
    Unknown keys are left for :func:`from_dict` to reject with the list of valid keys.
    """
    result = yaml.safe_load(yaml.safe_dump(data))  # deep copy of plain data
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {override!r} must look like section.key=value")
        *parents, leaf = key.strip().split(".")
        node = result
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {override!r}: {part!r} is a value, not a section")
            node = child
        node[leaf] = read_yaml(raw, f"the value of override {override!r}")
    return result


def load_config(
    path: str | Path, sections: Mapping[str, type], overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Load the YAML file ``path``, apply ``overrides`` and build each requested section.

    sections: section name → dataclass, e.g. ``{"dataset": DatasetConfig}``. Sections in the file
    that are not requested are ignored (they belong to other tools, e.g. ``model:`` for training);
    a requested section missing from the file is an error. Returns section name → instance.
    """
    path = Path(path)
    data = read_config_file(path)
    known = set(data) | set(sections)
    strays = [o for o in overrides if o.partition("=")[0].split(".")[0].strip() not in known]
    if strays:
        first = strays[0].partition("=")[0].split(".")[0]
        raise ValueError(
            f"override(s) {strays} name no section{_suggest(first, sorted(known))}; "
            f"sections are {sorted(known)}"
        )
    data = apply_overrides(data, overrides)
    built: dict[str, Any] = {}
    for name, cls in sections.items():
        if name not in data:
            raise ValueError(f"{path}: section {name!r} is missing; sections present: {sorted(data)}")
        built[name] = from_dict(cls, data[name], name)
    return built
