"""Typed option dataclasses: one declaration gives defaults, validation and docs.

Every config section (and every architecture's or task's own options) is a
dataclass whose fields are declared with `opt(...)`. `build()` turns a raw
TOML table into an instance, checking unknown keys, types, ranges and choices,
and raising ConfigError with the key, the value and what is allowed.
`describe()` feeds `docs/config.md` and `rnnlab list options`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from .errors import ConfigError


def opt(default, help: str, *, min=None, max=None, choices=None, above=None):
    """A config field. `min`/`max` are inclusive bounds, `above` an exclusive lower bound."""
    meta = {"help": help, "min": min, "max": max, "choices": choices, "above": above}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _field_type(cls, field: dataclasses.Field):
    hints = typing.get_type_hints(cls)
    return hints[field.name]


def type_name(tp) -> str:
    if typing.get_origin(tp) is list:
        (inner,) = typing.get_args(tp)
        return f"list of {type_name(inner)}"
    return {int: "integer", float: "number", bool: "true/false", str: "string"}.get(tp, str(tp))


def _coerce(tp, value, key: str):
    """Check `value` against the annotation `tp`; ints are accepted where floats are."""
    if typing.get_origin(tp) is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, value, f"expected a {type_name(tp)}")
        return [_coerce(inner, item, key) for item in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(key, value, "must be a finite number")
            return value
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(key, value, f"expected {type_name(tp)}, got {type(value).__name__}")


def allowed_text(tp, meta: dict) -> str:
    if meta.get("choices"):
        return ", ".join(map(str, meta["choices"]))
    parts = [type_name(tp)]
    if meta.get("above") is not None:
        parts.append(f"> {meta['above']}")
    if meta.get("min") is not None:
        parts.append(f">= {meta['min']}")
    if meta.get("max") is not None:
        parts.append(f"<= {meta['max']}")
    return " ".join(parts)


def _check_range(tp, meta: dict, value, key: str) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        bad = (
            (meta["choices"] is not None and item not in meta["choices"])
            or (meta["min"] is not None and item < meta["min"])
            or (meta["max"] is not None and item > meta["max"])
            or (meta["above"] is not None and item <= meta["above"])
        )
        if bad:
            problem = "not one of the choices" if meta["choices"] else "out of range"
            raise ConfigError(key, value, problem, allowed_text(tp, meta))


def build(cls, raw: dict[str, Any], section: str):
    """Make a `cls` instance from a raw TOML table, validating every key."""
    prefix = f"{section}." if section else ""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise ConfigError(f"{prefix}{key}", raw[key], "unknown key", ", ".join(fields))
    values = {}
    for name, field in fields.items():
        if name not in raw:
            continue
        key = f"{prefix}{name}"
        tp = _field_type(cls, field)
        value = _coerce(tp, raw[name], key)
        _check_range(tp, field.metadata, value, key)
        values[name] = value
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if check is not None:
        check(section)  # cross-field rules, e.g. tbptt_k2 >= tbptt_k1
    return instance


def describe(cls) -> list[dict]:
    """One row per field: key, type, default, allowed values, help (for docs)."""
    rows = []
    for field in dataclasses.fields(cls):
        tp = _field_type(cls, field)
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        rows.append({
            "key": field.name,
            "type": type_name(tp),
            "default": default,
            "allowed": allowed_text(tp, field.metadata),
            "help": field.metadata.get("help", ""),
        })
    return rows


def field_type(cls, name: str):
    """The annotation of field `name` of `cls` (for typed --set parsing), or None."""
    for field in dataclasses.fields(cls):
        if field.name == name:
            return _field_type(cls, field)
    return None
