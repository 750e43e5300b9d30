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

    def wire(self):
        """The text the contract's variant carries."""
        return self.message


class InvalidConfig(StepError):
    """The config is wrong: a missing field, a bad value, an unknown key. Nothing was changed.

    `pointer`, a JSON pointer into the `with` table (`"/checks/1/url"`),
    names the offending key: the host then shows the error at that key's
    line in the runbook instead of at `[step.with]`. The message names the
    key in words too (it is shown without the pointer)."""

    kind = "invalid-config"
    label = "invalid config"

    def __init__(self, message, pointer=None, problems=None):
        super().__init__(message)
        self.pointer = pointer or None
        #: Several problems, `[(pointer or None, message), …]`, each shown at
        #: its own key (see `InvalidConfig.of`); `None` for one.
        self.problems = [(p or None, str(m)) for p, m in problems] if problems else None

    @classmethod
    def of(cls, problems):
        """Every problem at once, `[(pointer or None, message), …]`: each is
        shown at its own key (`None`: at the `with` table); `message` is
        their words joined with `"; "`, for people and logs."""
        problems = [(p or None, str(m)) for p, m in problems]
        return cls("; ".join(m for _, m in problems), problems=problems)

    def __eq__(self, other):
        return super().__eq__(other) and self.pointer == other.pointer and self.problems == other.problems

    def __hash__(self):
        return hash((type(self), self.message, self.pointer))

    def __repr__(self):
        if self.problems:
            return f"InvalidConfig.of({self.problems!r})"
        if self.pointer:
            return f"InvalidConfig({self.message!r}, pointer={self.pointer!r})"
        return super().__repr__()

    def wire(self):
        """`` `#/checks/1/url`: message `` when a key is named: the pointer in
        URI-fragment form, as `wit/step.wit` describes for `invalid-config`.
        Several problems: those naming no key first, then each keyed one,
        joined with `"; "`."""
        if self.problems:
            plain = [m for p, m in self.problems if not p]
            keyed = [f"`#{_fragment(p)}`: {m}" for p, m in self.problems if p]
            return "; ".join(plain + keyed)
        if not self.pointer:
            return self.message
        return f"`#{_fragment(self.pointer)}`: {self.message}"


_FRAGMENT_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/")


def _fragment(pointer):
    """RFC 3986 fragment characters as they are, every other byte as `%XX`."""
    return "".join(chr(b) if b in _FRAGMENT_SAFE else f"%{b:02X}" for b in pointer.encode("utf-8"))


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
