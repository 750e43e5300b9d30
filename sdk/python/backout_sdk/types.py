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


class Effect(enum.Enum):
    """What an action does to the world (`effect` in `wit/step.wit`). When no
    action of a plan is a `CHANGE`, `backout run` says the rollback is already
    in place and runs nothing."""

    #: `run` changes something. The default: say otherwise only when the plan proved it.
    CHANGE = "change"
    #: `run` only looks, and changes nothing whatever it finds.
    CHECK = "check"
    #: Already as requested: `run` would leave it as it is.
    IN_PLACE = "in-place"


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
    """One thing a step would do, as `plan` reports it. `effect` says whether
    `run` would change anything by it; the default is a change."""

    summary: str
    detail: Optional[str] = None
    effect: Effect = Effect.CHANGE

    def __post_init__(self):
        if not isinstance(self.effect, Effect):
            raise TypeError(f"Action.effect must be an Effect, not {type(self.effect).__name__}")

    @classmethod
    def check(cls, summary: str, detail: Optional[str] = None) -> "Action":
        """Something `run` would only look at (a health check, a comparison)."""
        return cls(summary, detail, Effect.CHECK)

    @classmethod
    def in_place(cls, summary: str, detail: Optional[str] = None) -> "Action":
        """Something already as requested, which `run` would leave as it is."""
        return cls(summary, detail, Effect.IN_PLACE)


@dataclass
class Outcome:
    """What `run` and `undo` return. `outputs` is a dataclass or a dict; it
    must encode as a JSON object. Later steps read it as
    `${steps.<id>.outputs.<key>}`; `verify` and `undo` get it back."""

    summary: str
    outputs: Any = field(default_factory=dict)
