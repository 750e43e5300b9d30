"""Why a call failed: the contract's `step-error` variants, as exceptions.

Raise one from `plan`, `run`, `verify` or `undo`; the SDK turns it into the
matching WIT variant. The message says what exactly, naming the offending
value (and, from `run` and `undo`, what if anything was changed). Never put a
secret in it.
"""


class StepError(Exception):
    """Base class of the four variants. `message` is the text the operator reads."""

    #: The WIT variant's name.
    kind = "failed"
    #: How the variant reads in front of a message (as the Rust SDK prints it).
    label = "failed"

    def __init__(self, message):
        self.message = str(message)
        super().__init__(self.message)

    def __str__(self):
        return f"{self.label}: {self.message}"

    def __repr__(self):
        return f"{type(self).__name__}({self.message!r})"

    def __eq__(self, other):
        return type(self) is type(other) and self.message == other.message

    def __hash__(self):
        return hash((type(self), self.message))


class InvalidConfig(StepError):
    """The config is wrong: a missing field, a bad value, an unknown key. Nothing was changed."""

    kind = "invalid-config"
    label = "invalid config"


class Precondition(StepError):
    """The world is not in the state the step needs (a file is missing). Nothing was changed."""

    kind = "precondition"
    label = "precondition failed"


class Transient(StepError):
    """A temporary problem (a server not ready yet); trying again later may work."""

    kind = "transient"
    label = "transient error"


class Failed(StepError):
    """The step failed; the message says what, if anything, was changed."""

    kind = "failed"
    label = "failed"
