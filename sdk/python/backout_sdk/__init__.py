"""Write a backout rollback step in Python.

A step is a subclass of `Plugin`; `export` turns it into the class
componentize-py exports as the `backout:step` contract (see `wit/step.wit`).
The SDK does the plumbing: JSON config into your typed `Config` dataclass
(unknown keys are errors), your outputs back into JSON, `StepError`s into the
contract's `step-error` variants, logging and progress through the host, the
safe-file helpers every step that writes needs (`fs`), `${env.NAME}`
expansion (`vars`) and a blocking HTTP client over `wasi:http` (`http`).

A step that writes must survive backout being killed: from `run`, call
`checkpoint(outputs)` after the safety copy and before the first change a
crash could leave behind (see `recovery`); `verify` must then fail if the
change is not in place, and `undo` must be idempotent. `fs` declares its
temporary files to the host (`fs.temporary_file`) so none is left behind.

    from dataclasses import dataclass
    from backout_sdk import Action, Info, Outcome, Plugin, export

    @dataclass
    class Config:
        path: str

    class Touch(Plugin):
        Config = Config

        def describe(self):
            return Info("touch", "0.1.0", "create an empty file")

        def plan(self, config):
            return [Action(f"create {config.path}")]
        ...

    Step = export(Touch)

Build with `componentize-py -d wit -w plugin-wasi componentize app -p . -o touch.wasm`
(see sdk/python/README.md). The package is pure Python and is bundled into
each component; it also imports natively, so a plugin's logic can be unit
tested with plain `python3`.
"""

from . import config, fs, http, log, recovery, text, vars
from .config import ConfigError, Duration, Size
from .errors import Failed, InvalidConfig, Precondition, StepError, Transient
from .plugin import Calls, Plugin, export
from .recovery import checkpoint
from .types import Action, Effect, FileAccess, Info, Needs, Outcome

__version__ = "0.1.0"

__all__ = [
    "Action",
    "Effect",
    "Calls",
    "ConfigError",
    "Duration",
    "Failed",
    "FileAccess",
    "Info",
    "InvalidConfig",
    "Needs",
    "Outcome",
    "Plugin",
    "Precondition",
    "Size",
    "StepError",
    "Transient",
    "checkpoint",
    "config",
    "export",
    "fs",
    "http",
    "log",
    "recovery",
    "text",
    "vars",
]
