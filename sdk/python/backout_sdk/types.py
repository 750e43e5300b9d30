"""The SDK's view of the contract's records (`wit/step.wit`, interface `types`).

Plain dataclasses: the SDK converts them into the generated bindings when it
answers the host, so plugin code and its native unit tests never touch the
bindings.
"""

import enum
from dataclasses import dataclass, field
from typing import Any, List, Optional


class FileAccess(enum.Enum):
    """How much of the file system a plugin needs, at most."""

    NONE = "none"
    READ = "read"
    READ_WRITE = "read-write"


@dataclass
class Needs:
    """What a plugin expects the runbook to grant it. The default: nothing."""

    files: FileAccess = FileAccess.NONE
    #: Host environment variables the plugin always reads, by name. Variables
    #: named in the config (`${env.API_KEY}`) are not listed here.
    env: List[str] = field(default_factory=list)
    #: Whether the plugin makes outgoing HTTP requests.
    network: bool = False


@dataclass
class Info:
    """What `describe` returns. `config_schema` is a JSON Schema as a dict."""

    name: str
    version: str
    summary: str
    config_schema: Any = field(default_factory=dict)
    needs: Needs = field(default_factory=Needs)


@dataclass
class Action:
    """One thing a step would do, as `plan` reports it."""

    summary: str
    detail: Optional[str] = None


@dataclass
class Outcome:
    """What `run` and `undo` return. `outputs` is a dataclass or a dict; it
    must encode as a JSON object. Later steps read it as
    `${steps.<id>.outputs.<key>}`; `verify` and `undo` get it back."""

    summary: str
    outputs: Any = field(default_factory=dict)
