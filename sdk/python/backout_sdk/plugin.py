"""The plumbing between your step and the contract: JSON config into your
typed `Config`, your outputs back into JSON, `StepError`s into the WIT
`step-error` variants.

    from backout_sdk import Plugin, export

    class Touch(Plugin):
        Config = TouchConfig      # a dataclass (or dict: the JSON object as it is)
        Outputs = TouchOutputs    # a dataclass (or dict)

        def describe(self): ...
        def plan(self, config): ...             # -> list of Action
        def run(self, config): ...              # -> Outcome
        def verify(self, config, outputs): ...  # -> None
        def undo(self, config, outputs): ...    # -> Outcome

    Step = export(Touch)    # componentize-py looks for `Step` in the app module

Every method runs in a fresh instance of the component: nothing survives in
memory between calls. Whatever `verify` and `undo` need must be in the
outputs `run` returns.
"""

import json
import traceback

from . import _bindings, log
from .config import ConfigError, from_json, to_json_value
from .errors import Failed, InvalidConfig, StepError
from .types import Action, Effect, FileAccess, Info, Outcome

__all__ = ["Plugin", "Calls", "export"]


class Plugin:
    """A rollback step. Subclass it, set `Config` and `Outputs`, implement the
    five methods, then `Step = export(YourPlugin)` at module level."""

    #: The config type: a dataclass, decoded strictly (unknown keys are
    #: errors). `dict`: the JSON object as it is.
    Config = dict
    #: The outputs type: a dataclass or `dict`. `verify` and `undo` receive
    #: run's outputs decoded into it (leniently: unknown keys are ignored).
    Outputs = dict

    def describe(self):
        """Who the plugin is and what it needs (an `Info`). No effects."""
        raise NotImplementedError

    def plan(self, config):
        """Checks the config and says what `run` would do: a list of
        `Action`. Must not change anything: the host mounts every directory
        read-only and allows only GET and HEAD while it runs."""
        raise NotImplementedError

    def run(self, config):
        """Does the work and returns an `Outcome`. Keep a safety copy of
        anything replaced, and record its location in the outputs. Call
        `checkpoint(outputs)` before your first irreversible change (after
        the safety copy, before the rename over the live file); if it raises,
        change nothing and let the error through."""
        raise NotImplementedError

    def verify(self, config, outputs):
        """Checks that what `run` did is in place; raises a `StepError` if
        not. No effects. After a crash `outputs` is the last checkpoint and
        the change may never have happened: fail unless it is entirely in
        place."""
        raise NotImplementedError

    def undo(self, config, outputs):
        """Puts back what `run` replaced, only if the target still holds what
        `run` wrote; otherwise raises `Precondition`. Returns an `Outcome`.
        Must be idempotent: after a crash it gets the last checkpoint, and it
        runs again if backout died during an earlier undo; when the target
        already holds what it held before `run`, change nothing and succeed
        with "nothing to undo"."""
        raise NotImplementedError


def _decode_config(plugin, text):
    try:
        return from_json(plugin.Config, text)
    except ConfigError as e:
        raise InvalidConfig(str(e), pointer=e.pointer) from None


def _decode_outputs(plugin, text):
    try:
        return from_json(plugin.Outputs, text, strict=False)
    except ConfigError as e:
        raise InvalidConfig(f"outputs of the earlier run are not usable: {e}") from None


def _encode_outcome(outcome):
    if not isinstance(outcome, Outcome):
        raise Failed(f"the plugin returned {type(outcome).__name__}, not an Outcome")
    value = to_json_value(outcome.outputs)
    if not isinstance(value, dict):
        raise Failed(f"cannot encode outputs: they must be a JSON object, not {type(value).__name__}")
    try:
        return outcome.summary, json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise Failed(f"cannot encode outputs: {e}") from None


class Calls:
    """The five calls with JSON in and out, in plain Python: what `export`
    wraps for the host, and what a plugin's native unit tests can call
    (`Calls(MyPlugin).plan('{"file": "/app/.env"}')`)."""

    def __init__(self, plugin_class):
        self.plugin_class = plugin_class

    def describe(self):
        info = self.plugin_class().describe()
        if not isinstance(info, Info):
            raise TypeError(f"describe returned {type(info).__name__}, not an Info")
        return info

    def plan(self, config_json):
        plugin = self.plugin_class()
        actions = plugin.plan(_decode_config(plugin, config_json))
        actions = list(actions or [])
        for a in actions:
            if not isinstance(a, Action):
                raise Failed(f"plan returned {type(a).__name__} among its actions, not an Action")
        return actions

    def run(self, config_json):
        """Returns `(summary, outputs_json)`."""
        plugin = self.plugin_class()
        return _encode_outcome(plugin.run(_decode_config(plugin, config_json)))

    def verify(self, config_json, outputs_json):
        plugin = self.plugin_class()
        plugin.verify(_decode_config(plugin, config_json), _decode_outputs(plugin, outputs_json))

    def undo(self, config_json, outputs_json):
        """Returns `(summary, outputs_json)`."""
        plugin = self.plugin_class()
        return _encode_outcome(plugin.undo(_decode_config(plugin, config_json), _decode_outputs(plugin, outputs_json)))


def _unexpected(call, error):
    """A Python exception that is not a `StepError` is a bug in the plugin:
    log where it happened, and fail the call with a message that says so
    instead of trapping (which would tell the operator nothing)."""
    frames = traceback.extract_tb(error.__traceback__)[-4:]
    for frame in frames:
        log.error(f"  at {frame.filename}:{frame.lineno} in {frame.name}")
    what = f"{type(error).__name__}: {error}"
    changed = "; what it changed before failing is not known" if call in ("run", "undo") else ""
    return Failed(f"the plugin failed unexpectedly in `{call}` ({what}){changed}")


def export(plugin_class):
    """The class componentize-py exports as `backout:step/step`. Assign it to
    `Step` in the app module: `Step = export(MyPlugin)`.

    Outside a component it returns `Calls(plugin_class)`'s class, so the app
    module still imports in native unit tests."""
    if not _bindings.IN_COMPONENT:

        class NativeStep(Calls):
            def __init__(self):
                super().__init__(plugin_class)

        return NativeStep

    wit = _bindings.wit_types
    variants = {
        "invalid-config": wit.StepError_InvalidConfig,
        "precondition": wit.StepError_Precondition,
        "transient": wit.StepError_Transient,
        "failed": wit.StepError_Failed,
    }
    effects = {
        Effect.CHANGE: wit.Effect.CHANGE,
        Effect.CHECK: wit.Effect.CHECK,
        Effect.IN_PLACE: wit.Effect.IN_PLACE,
    }
    files = {
        FileAccess.NONE: wit.FileAccess.NONE,
        FileAccess.READ: wit.FileAccess.READ,
        FileAccess.READ_WRITE: wit.FileAccess.READ_WRITE,
    }
    calls = Calls(plugin_class)

    def guarded(name, fn, *args):
        try:
            return fn(*args)
        except StepError as e:
            raise _bindings.Err(variants[e.kind](e.wire())) from None
        except Exception as e:  # noqa: BLE001 - a bug must not trap the host call
            failure = _unexpected(name, e)
            raise _bindings.Err(wit.StepError_Failed(failure.message)) from None

    class Step(_bindings.exports.Step):
        def describe(self):
            info = calls.describe()
            needs = wit.Needs(files[info.needs.files], list(info.needs.env), bool(info.needs.network))
            schema = json.dumps(to_json_value(info.config_schema), ensure_ascii=False)
            return wit.Info(info.name, info.version, info.summary, schema, needs)

        def plan(self, config):
            actions = guarded("plan", calls.plan, config)
            return [wit.Action(a.summary, a.detail, effects[a.effect]) for a in actions]

        def run(self, config):
            summary, outputs = guarded("run", calls.run, config)
            return wit.Outcome(summary, outputs)

        def verify(self, config, outputs):
            guarded("verify", calls.verify, config, outputs)

        def undo(self, config, outputs):
            summary, outputs = guarded("undo", calls.undo, config, outputs)
            return wit.Outcome(summary, outputs)

    return Step
