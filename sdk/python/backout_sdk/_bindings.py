"""Access to the bindings componentize-py generates (`wit_world`), when the
code runs inside a component. Natively (a plugin's unit tests with plain
`python3`) they do not exist, and `IN_COMPONENT` is false: the SDK falls back
to what the standard library can do (stderr for logs, chmod for permissions)
or to a clear error (HTTP).

componentize-py imports the app once while it builds the component
(pre-initialisation) and snapshots the interpreter: module-level code runs at
build time, so it must not read the environment, the clock or files; and
every module must be imported at module level, since the bundled files are
not there at run time.
"""

try:  # pragma: no cover - only inside a component
    from componentize_py_types import Err as Err
    from componentize_py_types import Ok as Ok
    from wit_world.imports import backout_step_types as wit_types
    from wit_world import exports as exports
    from wit_world.imports import host as host

    IN_COMPONENT = True
except ImportError:
    Err = Ok = None
    wit_types = exports = None
    host = None
    IN_COMPONENT = False

# `backout:step/files`: the host's kernel-side copy and native sha256 (the
# fast path of `fs.copy_file`, `fs.sha256_file` and `fs.safety_copy`).
try:  # pragma: no cover - only inside a component
    from wit_world.imports import files as files

    HAS_FILES = True
except ImportError:
    files = None
    HAS_FILES = False

# The wasi:http client's interfaces (world `plugin-wasi`). Imported here, at
# module level, on purpose: componentize-py snapshots the interpreter after
# importing the app, and the bundled files are gone at run time, so a module
# first imported inside a function while a call runs is not found.
try:  # pragma: no cover - only inside a component
    from wit_world.imports import monotonic_clock, outgoing_handler, poll, streams
    from wit_world.imports import wasi_http_types as http_types

    HAS_HTTP = True
except ImportError:
    monotonic_clock = outgoing_handler = poll = streams = http_types = None
    HAS_HTTP = False


def drop(resource):
    """Releases a WASI resource now, not when Python collects it: the host
    wants a child (a stream, a pollable, a header list) gone before its
    parent (the body, the future, the response)."""
    if resource is not None:
        resource.__exit__(None, None, None)
