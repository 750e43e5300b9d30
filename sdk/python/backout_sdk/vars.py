"""`${env.NAME}` and `${captures.NAME}` inside config strings, expanded by the
plugin, inside the sandbox (the Python twin of the Rust SDK's `vars`).

The host substitutes `${vars.…}` and `${steps.….outputs.…}` itself, but it
passes `${env.NAME}` (after checking that NAME is in the step's `env` grant)
and `${captures.NAME}` through verbatim. The plugin expands them only at the
moment it needs the value, for example in a request URL, so a secret never
appears in the config, the plan, the journal or the outputs: those keep the
placeholder.

    >>> from backout_sdk import vars
    >>> vars.expand("Bearer ${env.API_KEY}", lambda ns, name: "s3cret" if name == "API_KEY" else None)
    'Bearer s3cret'

Anything else between `${` and `}` is left as it is: the host has already
refused unknown references, so what remains is text the runbook meant
literally.
"""

import enum
import os
from dataclasses import dataclass

__all__ = [
    "Namespace",
    "Reference",
    "UnsetReference",
    "is_valid_name",
    "references",
    "expand",
    "expand_only",
    "env",
    "env_only",
]


class Namespace(enum.Enum):
    """Where a `${…}` reference takes its value from."""

    #: `${env.NAME}`: a host environment variable granted to the step.
    ENV = "env"
    #: `${captures.NAME}`: a value the plugin captured earlier in the same call.
    CAPTURES = "captures"

    def __str__(self):
        return self.value


@dataclass(frozen=True)
class Reference:
    """One `${env.NAME}` or `${captures.NAME}` found in a string; `start` and
    `end` delimit the whole `${…}` (`text[start:end]`)."""

    namespace: Namespace
    name: str
    start: int
    end: int

    @property
    def raw(self):
        """The reference as written, normalised: `${env.API_KEY}`."""
        return "${" + f"{self.namespace.value}.{self.name}" + "}"


class UnsetReference(ValueError):
    """A reference has no value; the message names it, never a value."""


def is_valid_name(name):
    """Letters, digits, `_` and `-` (the host's rule for every reference)."""
    return bool(name) and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


def references(text):
    """Every `${env.NAME}` and `${captures.NAME}` in `text`, in order. Other
    `${…}` text, and references with an invalid name, are not references.
    Blanks inside the braces are ignored (`${ env.A }`), as the host does."""
    found = []
    start_from = 0
    while True:
        start = text.find("${", start_from)
        if start < 0:
            break
        inner_start = start + 2
        close = text.find("}", inner_start)
        if close < 0:
            break
        inner = text[inner_start:close].strip()
        end = close + 1
        prefix, dot, name = inner.partition(".")
        namespace = {"env": Namespace.ENV, "captures": Namespace.CAPTURES}.get(prefix) if dot else None
        if namespace is not None and is_valid_name(name):
            found.append(Reference(namespace, name, start, end))
            start_from = end
        else:
            # Not ours: step past the `$` only, so a reference that starts
            # inside this text (`${x ${env.A}`) is still found.
            start_from = start + 1
    return found


_KEEP = object()


def _expand(text, lookup):
    refs = references(text)
    if not refs:
        return text
    out = []
    copied = 0
    for r in refs:
        out.append(text[copied : r.start])
        value = lookup(r.namespace, r.name)
        if value is _KEEP:
            out.append(text[r.start : r.end])
        elif value is None:
            if r.namespace is Namespace.ENV:
                raise UnsetReference(f"`{r.raw}` is not set in the host's environment")
            raise UnsetReference(f"`{r.raw}` has not been captured")
        else:
            out.append(value)
        copied = r.end
    out.append(text[copied:])
    return "".join(out)


def expand(text, lookup):
    """Replaces every `${env.NAME}` and `${captures.NAME}` in `text` with
    `lookup(namespace, name)`; other text is copied as it is. Values are not
    expanded again.

    A reference `lookup` answers `None` for raises `UnsetReference` naming it
    (`${env.X}` is not set), never an empty string: an empty API key fails in
    a far more confusing way."""
    return _expand(text, lookup)


def expand_only(text, namespace, lookup):
    """Replaces only the references of `namespace` (`lookup(name)`), leaving
    the others verbatim: to show a string with captured values filled in
    while its `${env.…}` secrets stay hidden."""
    return _expand(text, lambda ns, name: lookup(name) if ns is namespace else _KEEP)


def env(name):
    """The value of the host environment variable `name`, if the step's `env`
    grant includes it and it is set. The sandbox sees only granted variables,
    so an ungranted one reads as unset."""
    return os.environ.get(name)


def env_only(namespace, name):
    """An `expand` lookup that reads `${env.NAME}` with `env` and knows no captures."""
    return env(name) if namespace is Namespace.ENV else None
