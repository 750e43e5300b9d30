"""Logging and progress through the host.

Lines go to the run's log, prefixed with the step id (`[notify] run info: …`),
and into the run's report. The host bounds both their length and their
number, so log what an operator needs to follow the step, not every byte.
Never log secrets (the host masks granted environment values, but a part of
one, such as the path of a webhook URL, is not masked).

Outside a component (native unit tests) lines go to stderr.
"""

import sys

from . import _bindings

__all__ = ["trace", "debug", "info", "warn", "error", "progress"]


def _log(level, message):
    message = str(message)
    if _bindings.IN_COMPONENT:
        _bindings.host.log(getattr(_bindings.host.Level, level.upper()), message)
    else:
        print(f"{level}: {message}", file=sys.stderr)


def trace(message):
    _log("trace", message)


def debug(message):
    _log("debug", message)


def info(message):
    _log("info", message)


def warn(message):
    _log("warn", message)


def error(message):
    _log("error", message)


def progress(done, total=None, unit=""):
    """Reports that `done` of `total` (if known) `unit`s are finished. Call it
    as often as is convenient; the host rate-limits what it shows."""
    if _bindings.IN_COMPONENT:
        _bindings.host.progress(int(done), None if total is None else int(total), unit)
