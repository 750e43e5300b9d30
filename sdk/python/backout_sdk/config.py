"""Typed config from JSON: the runbook's `with` table into your dataclasses.

Declare the config as dataclasses with type annotations; `parse` checks the
JSON against them the way the Rust SDK's serde with `deny_unknown_fields`
does: an unknown key is an error (a misspelled `timeout` must not silently
become the default), a missing required field is an error, a value of the
wrong type is an error, and every message names the offending key by its
path (`retry.attempts`).

    from dataclasses import dataclass, field
    from typing import Dict, Optional
    from backout_sdk.config import Duration, parse

    @dataclass
    class Retry:
        attempts: int = 1
        interval: Duration = Duration.parse("1s")

    @dataclass
    class Config:
        url: str
        headers: Dict[str, str] = field(default_factory=dict)
        retry: Retry = field(default_factory=Retry)
        title: Optional[str] = None

    config = parse(Config, {"url": "http://127.0.0.1:3000/", "retry": {"attempts": 3}})

Supported annotations: `str`, `int`, `float` (an integer is accepted),
`bool`, `Any` (the JSON value as it is), `Optional[T]` / `T | None`,
`List[T]`, `Dict[str, T]`, `Literal[...]`, `Union[...]` (the first that
fits), `enum.Enum` subclasses (by value), nested dataclasses, and any class
with a `from_config(value, path)` classmethod (such as `Duration`). A field
whose JSON key is not a Python name takes `field(metadata={"key": "max-size"})`.
"""

import dataclasses
import enum
import json
import re
import types as _types
import typing
from typing import Any, Dict, List

__all__ = ["ConfigError", "Duration", "KeyPath", "Size", "parse", "from_json", "to_json_value"]


class KeyPath(str):
    """A key's path as a runbook reads it (`checks[0].retry.attempts`), which
    also knows its JSON pointer into the `with` table (`/checks/0/retry/attempts`):
    the `path` a `from_config` classmethod receives. It is a `str`, so
    messages can show it as they always did."""

    def __new__(cls, text="", tokens=()):
        self = super().__new__(cls, text)
        self.tokens = tuple(tokens)
        return self

    def key(self, key):
        return KeyPath(_join(str(self), key), self.tokens + (key,))

    def index(self, i):
        return KeyPath(f"{self}[{i}]", self.tokens + (str(i),))

    @property
    def pointer(self):
        """The JSON pointer (RFC 6901): `/checks/0/url`; `""` for the whole table."""
        return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in self.tokens)


class ConfigError(ValueError):
    """The JSON does not fit the declared types; the message names the key.

    `pointer` is the JSON pointer of the key it is about (when `path` is a
    `KeyPath`, as the SDK passes it), so the host can show the error at that
    key's line in the runbook."""

    def __init__(self, message, path=None):
        super().__init__(message)
        self.pointer = path.pointer if isinstance(path, KeyPath) and path.tokens else None


def _where(path):
    return f"`{path}`: " if path else ""


def _show(value):
    """How a JSON value is named in an error: its type and a short excerpt."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, (int, float)):
        return f"number `{value}`"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:40] + "…"
        return f"string {json.dumps(text, ensure_ascii=False)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _key_of(f):
    return f.metadata.get("key", f.name)


_NONE = type(None)


def _is_union(origin):
    return origin is typing.Union or origin is getattr(_types, "UnionType", None)


def _expected(tp):
    """`a string`, `an integer`, … for messages."""
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    if tp in names:
        return names[tp]
    origin = typing.get_origin(tp)
    if origin in (list, List):
        return "an array"
    if origin in (dict, Dict) or dataclasses.is_dataclass(tp):
        return "a table"
    if _is_union(origin):
        return " or ".join(_expected(a) for a in typing.get_args(tp) if a is not _NONE)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{json.dumps(a)}`" for a in typing.get_args(tp))
    if isinstance(tp, type) and hasattr(tp, "expected"):
        return tp.expected
    return getattr(tp, "__name__", str(tp))


def _decode(tp, value, path, strict):
    if tp is Any or tp is object:
        return value
    if isinstance(tp, type) and hasattr(tp, "from_config"):
        return tp.from_config(value, path)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if _is_union(origin):
        if value is None and _NONE in args:
            return None
        options = [a for a in args if a is not _NONE]
        if len(options) == 1:
            return _decode(options[0], value, path, strict)
        deeper = None
        for option in options:
            try:
                return _decode(option, value, path, strict)
            except ConfigError as e:
                # An option whose shape fit, but whose inside did not, says
                # more than "expected a table or an array".
                if deeper is None and not str(e).startswith(f"{_where(path)}expected "):
                    deeper = e
        if deeper is not None:
            raise deeper
        raise ConfigError(f"{_where(path)}expected {_expected(tp)}, got {_show(value)}", path)
    if origin is typing.Literal:
        for allowed in args:
            if value == allowed and type(value) is type(allowed):
                return value
        raise ConfigError(f"{_where(path)}expected {_expected(tp)}, got {_show(value)}", path)
    if tp is str:
        if isinstance(value, str):
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer() and not isinstance(value, bool):
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif origin in (list, List) or tp is list:
        if isinstance(value, list):
            item = args[0] if args else Any
            return [_decode(item, v, _index(path, i), strict) for i, v in enumerate(value)]
    elif origin in (dict, Dict) or tp is dict:
        if isinstance(value, dict):
            item = args[1] if len(args) == 2 else Any
            return {k: _decode(item, v, _key(path, k), strict) for k, v in value.items()}
    elif dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, dict):
            return _decode_dataclass(tp, value, path, strict)
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if member.value == value and type(member.value) is type(value):
                return member
        allowed = ", ".join(f"`{m.value}`" for m in tp)
        raise ConfigError(f"{_where(path)}expected one of {allowed}, got {_show(value)}", path)
    else:
        raise TypeError(f"backout_sdk.config cannot decode the annotation {tp!r} (at `{path}`)")
    raise ConfigError(f"{_where(path)}expected {_expected(tp)}, got {_show(value)}", path)


def _key(path, key):
    return path.key(key) if isinstance(path, KeyPath) else _join(path, key)


def _index(path, i):
    return path.index(i) if isinstance(path, KeyPath) else f"{path}[{i}]"


def _join(path, key):
    simple = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key) is not None
    shown = key if simple else json.dumps(key, ensure_ascii=False)
    return f"{path}.{shown}" if path else shown


def _decode_dataclass(cls, value, path, strict):
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    by_key = {_key_of(f): f for f in fields}
    if strict:
        unknown = [k for k in value if k not in by_key]
        if unknown:
            expected = ", ".join(f"`{k}`" for k in by_key)
            raise ConfigError(
                f"{_where(path)}unknown field `{unknown[0]}`, expected "
                + (f"one of {expected}" if len(by_key) > 1 else expected or "no fields"),
                _key(path, unknown[0]),
            )
    kwargs = {}
    for key, f in by_key.items():
        if key in value:
            kwargs[f.name] = _decode(hints.get(f.name, Any), value[key], _key(path, key), strict)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_where(path)}missing field `{key}`", path)
    return cls(**kwargs)


def parse(cls, value, *, strict=True):
    """Decodes the JSON value `value` (already loaded) into `cls`.

    `strict=False` ignores unknown keys (the SDK uses it for run's outputs,
    which an older or newer plugin version may have written). Raises
    `ConfigError` naming the offending key.
    """
    return _decode(cls, value, KeyPath(), strict)


def from_json(cls, text, *, strict=True):
    """Loads JSON text and decodes it into `cls` (see `parse`)."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"not valid JSON: {e}") from None
    return parse(cls, value, strict=strict)


def to_json_value(value):
    """The JSON value of outputs: dataclasses become objects (keys renamed as
    in `field(metadata={"key": …})`, fields that are `None` left out), enums
    their value, `Duration` and `Size` their text."""
    if isinstance(value, (Duration, Size)):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is not None:
                out[_key_of(f)] = to_json_value(item)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return value


def _split_number(text):
    trimmed = text.strip()
    match = re.match(r"[0-9]+", trimmed)
    if not match:
        raise ValueError(f"`{text}` does not start with a whole number")
    return int(match.group(0)), trimmed[match.end():]


@dataclasses.dataclass(frozen=True, order=True)
class Duration:
    """A length of time written as a whole number and a unit: `500ms`, `2s`,
    `1m`, `1h` (the notation every backout plugin uses). Greater than zero."""

    millis: int

    expected = "a duration such as `500ms`, `2s` or `1m`"

    @classmethod
    def parse(cls, text):
        """Parses `500ms`, `2s`, `1m` or `1h`; raises `ValueError` saying why not."""
        number, unit = _split_number(text)
        factors = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000}
        if unit == "":
            raise ValueError(f"`{text}` has no unit; write for example `500ms`, `2s` or `1m`")
        if unit not in factors:
            raise ValueError(f"unknown duration unit `{unit}` in `{text}`; use `ms`, `s`, `m` or `h`")
        if number == 0:
            raise ValueError(f"duration `{text}` must be greater than zero")
        return cls(number * factors[unit])

    @classmethod
    def from_config(cls, value, path):
        if not isinstance(value, str):
            raise ConfigError(f"{_where(path)}expected {cls.expected}, got {_show(value)}", path)
        try:
            return cls.parse(value)
        except ValueError as e:
            raise ConfigError(f"{_where(path)}{e}", path) from None

    @classmethod
    def of_seconds(cls, seconds):
        return cls(max(0, round(seconds * 1000)))

    @property
    def seconds(self):
        return self.millis / 1000

    def __str__(self):
        ms = self.millis
        if ms < 1000:
            return f"{ms}ms"
        if ms % 1000:
            return f"{ms / 1000:.1f}s"
        secs = ms // 1000
        if secs < 60:
            return f"{secs}s"
        minutes, rest = divmod(secs, 60)
        if minutes < 60:
            return f"{minutes}m {rest}s" if rest else f"{minutes}m"
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"


@dataclasses.dataclass(frozen=True, order=True)
class Size:
    """A number of bytes written with a unit: `512KiB`, `1MiB` (binary),
    `1KB`, `1MB` (decimal) or `100B`."""

    bytes: int

    expected = "a size such as `512KiB` or `1MiB`"

    @classmethod
    def parse(cls, text):
        number, unit = _split_number(text)
        factors = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1000, "kB": 1000, "MB": 10**6, "GB": 10**9}
        if unit == "":
            raise ValueError(f"`{text}` has no unit; write for example `1MiB` or `512KiB`")
        if unit not in factors:
            raise ValueError(f"unknown size unit `{unit}` in `{text}`; use `B`, `KiB`, `MiB`, `KB` or `MB`")
        return cls(number * factors[unit])

    @classmethod
    def from_config(cls, value, path):
        if not isinstance(value, str):
            raise ConfigError(f"{_where(path)}expected {cls.expected}, got {_show(value)}", path)
        try:
            return cls.parse(value)
        except ValueError as e:
            raise ConfigError(f"{_where(path)}{e}", path) from None

    def __str__(self):
        for size, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if self.bytes >= size and self.bytes % size == 0:
                return f"{self.bytes // size}{unit}"
        return f"{self.bytes}B"


def show_bytes(n):
    """`1 MiB`, `512 KiB`, `100 bytes`: a byte count as people read it."""
    for size, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"
