"""Checkpoints: the write-ahead record that makes a step recoverable when
backout itself is killed (the Python twin of the Rust SDK's `checkpoint`).

A step that writes calls `checkpoint(outputs)` from `run` once it knows
everything `verify` and `undo` need (the safety copy's path, the digest it is
about to write), and before its first change that a crash could leave behind
(the rename over the live file). The host journals the outputs durably before
the call returns. If backout dies before `run` returns, `backout resume` and
`backout undo` hand the last checkpoint to `verify` and `undo` as the run's
outputs, so both must work whether the change happened or not: `verify`
fails if it did not, and `undo` succeeds without changing anything when there
is nothing to put back. Each call replaces the previous one; `run`'s own
outputs replace them all.

Outside a component (native unit tests) nothing is journaled: each checkpoint
is kept in a list that `recorded()` returns, and `set_hook` lets a test look
at the files at the moment of the checkpoint, or make it fail as the host
would.
"""

import json

from . import _bindings
from .config import to_json_value
from .errors import Failed

__all__ = ["MAX_BYTES", "checkpoint", "recorded", "clear", "set_hook"]

#: The host refuses larger checkpoints; so does `checkpoint`, before calling it.
MAX_BYTES = 1024 * 1024

_recorded = []
_hook = None


def checkpoint(outputs):
    """Records `outputs` (what `run` would return: a dataclass or a dict
    that encodes to a JSON object of at most `MAX_BYTES`) as the step's
    write-ahead checkpoint. Call it from `run` only.

    Raises `Failed` when the record is not durable (the message already says
    "nothing was changed"): the step must then change nothing, remove what it
    created so far (a safety copy), and let the error through."""

    def refused(why):
        return Failed(f"cannot record a checkpoint before changing anything: {why}; nothing was changed")

    value = to_json_value(outputs)
    if not isinstance(value, dict):
        raise refused(f"the outputs must be a JSON object, not {type(value).__name__}")
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise refused(f"cannot encode the outputs: {e}") from None
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise refused(f"the outputs are {size} bytes, more than the {MAX_BYTES} allowed")
    if _bindings.IN_COMPONENT:
        try:
            _bindings.host.checkpoint(text)
        except _bindings.Err as e:
            raise refused(e.value) from None
        return
    if _hook is not None:
        reason = _hook(json.loads(text))
        if reason is not None:
            raise refused(reason)
    _recorded.append(json.loads(text))


def recorded():
    """Every checkpoint recorded so far, oldest first, as decoded JSON. Native only."""
    return list(_recorded)


def clear():
    """Forgets the recorded checkpoints and the hook. Native only."""
    global _hook
    _recorded.clear()
    _hook = None


def set_hook(hook):
    """Calls `hook(outputs)` at each later checkpoint, before it is recorded:
    a test can look at the files at that moment (nothing may have changed
    yet). A hook that returns a string makes `checkpoint` fail with that
    reason, as a host that cannot journal would. Native only."""
    global _hook
    _hook = hook
