"""{{name}}: a backout rollback step written in Python.

It replaces a file's contents the safe way, as every step that writes must:
a safety copy first (its path goes into the outputs), then an atomic replace
that keeps the file's permissions and owner, a check afterwards, and an undo
that restores the copy only if the file still holds what run wrote.

Everything here is imported when the component is built (componentize-py
snapshots the interpreter after importing this module): import every module
at the top, and read the environment, the clock and files only inside the
methods.
"""

import os
from dataclasses import dataclass

from backout_sdk import (
    Action,
    Failed,
    FileAccess,
    Info,
    Needs,
    Outcome,
    Plugin,
    Precondition,
    export,
    fs,
    log,
)

VERSION = "0.1.0"


@dataclass
class Config:
    """The runbook's `with` table. Unknown keys are errors."""

    #: The file to replace, as the step sees it (`/data/greeting.txt`).
    file: str
    #: What it should hold.
    contents: str


@dataclass
class Outputs:
    """What run reports; verify and undo get it back."""

    file: str
    safety_copy: str
    sha256_before: str
    sha256_after: str


class WriteFile(Plugin):
    Config = Config
    Outputs = Outputs

    def describe(self):
        return Info(
            "{{name}}",
            VERSION,
            "replace a file's contents, keeping a safety copy",
            config_schema={
                "type": "object",
                "additionalProperties": False,
                "required": ["file", "contents"],
                "properties": {
                    "file": {"type": "string", "description": "the file to replace (a path in a granted directory)"},
                    "contents": {"type": "string", "description": "what it should hold"},
                },
            },
            needs=Needs(files=FileAccess.READ_WRITE),
        )

    def plan(self, config):
        # Directories are read-only here: look, never touch.
        if not os.path.isfile(config.file):
            raise Precondition(f"`{config.file}` does not exist (is its directory granted?)")
        before = fs.sha256_file(config.file)
        after = fs.sha256_hex(config.contents)
        detail = f"sha256 {before[:12]}… → {after[:12]}…; a safety copy is kept beside it"
        return [Action(f"replace {config.file}", detail)]

    def run(self, config):
        if not os.path.isfile(config.file):
            raise Precondition(f"`{config.file}` does not exist; nothing was changed")
        before = fs.sha256_file(config.file)
        try:
            safety_copy = fs.safety_copy(config.file)  # 1. keep what you replace
        except OSError as e:
            raise Failed(f"cannot keep a safety copy of `{config.file}`: {e}; nothing was changed") from None
        try:
            fs.replace_atomically(config.file, config.contents)  # 2. temp, fsync, rename, fsync dir
        except OSError as e:
            raise Failed(f"cannot replace `{config.file}`: {e}; it is unchanged (safety copy {safety_copy})") from None
        log.info(f"replaced {config.file}; safety copy {safety_copy}")
        outputs = Outputs(config.file, safety_copy, before, fs.sha256_hex(config.contents))
        return Outcome(f"replaced {config.file} (safety copy {safety_copy})", outputs)

    def verify(self, config, outputs):
        # 3. check after writing
        if fs.sha256_file(config.file) != outputs.sha256_after:
            raise Precondition(f"`{config.file}` does not hold what run wrote")

    def undo(self, config, outputs):
        # 4. only if untouched since
        now = fs.sha256_file(config.file)
        if now != outputs.sha256_after:
            raise Precondition(f"`{config.file}` changed since run (sha256 {now}); nothing restored")
        with open(outputs.safety_copy, "rb") as f:
            original = f.read()
        try:
            fs.replace_atomically(config.file, original)
        except OSError as e:
            raise Failed(f"cannot restore `{config.file}`: {e}; it still holds what run wrote") from None
        return Outcome(f"restored {config.file} from {outputs.safety_copy}", outputs)


# componentize-py exports the class named `Step` in this module.
Step = export(WriteFile)
