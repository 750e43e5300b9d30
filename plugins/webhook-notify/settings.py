"""webhook-notify's config: the `with` table, typed, and every check `plan`
can make without sending anything."""

import re
from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Union

from backout_sdk import Duration, InvalidConfig, Precondition, http, vars
from backout_sdk.vars import Namespace

#: Slack's limits on a message (blocks): a header's text, a section's text,
#: one field's text, fields in all (10 per section block, 50 blocks).
MAX_TITLE = 150
MAX_TEXT = 3000
MAX_FIELD_VALUE = 2000
MAX_FIELDS = 40
MAX_ATTEMPTS = 10
MAX_TIMEOUT = Duration.parse("2m")
MAX_INTERVAL = Duration.parse("5m")
#: `plan` refuses retries whose waits could add up to more than this.
MAX_TOTAL_WAIT = Duration.parse("15m")

_COLOR = re.compile(r"good|warning|danger|#[0-9A-Fa-f]{6}")


@dataclass
class Retry:
    """How often to try, and how long to wait between tries."""

    #: Tries in all, the first included.
    attempts: int = 3
    #: Wait after the first failure.
    interval: Duration = Duration.parse("1s")
    #: Each wait is the previous one times this.
    backoff: float = 2.0
    #: No single wait is longer (a `Retry-After` longer than this ends the retries).
    max_interval: Duration = Duration.parse("30s")

    def waits(self):
        """The waits between the tries, in order (one fewer than attempts)."""
        out = []
        wait = self.interval.millis
        for _ in range(self.attempts - 1):
            out.append(Duration(max(1, min(round(wait), self.max_interval.millis))))
            wait *= self.backoff
        return out


@dataclass
class Field:
    """One row of `fields` written as an array entry (keeps its place)."""

    label: str
    value: str


@dataclass
class Config:
    #: The incoming webhook's URL; usually `${env.SLACK_WEBHOOK}`.
    url: str
    #: The runbook the message is about (names it in the message).
    runbook: str
    #: The message (Slack mrkdwn / Markdown).
    text: str
    #: A heading above the text.
    title: Optional[str] = None
    #: Label → value, shown as a table; runbooks fill values with
    #: `${steps.ID.outputs.KEY}`. A TOML table reaches the plugin with its
    #: keys sorted; an array of `{ label, value }` keeps its order.
    fields: Union[Dict[str, str], List[Field]] = field(default_factory=dict)
    #: `blocks` (Slack's layout blocks, plus a full `text` for Mattermost and
    #: notifications) or `attachments` (legacy attachments, with `color`).
    format: Literal["blocks", "attachments"] = "blocks"
    #: Attachment colour: `good`, `warning`, `danger` or `#RRGGBB`.
    color: Optional[str] = None
    #: Limit for one try, from sending to the last byte of the answer.
    timeout: Duration = Duration.parse("10s")
    retry: Retry = field(default_factory=Retry)
    #: When set, `undo` posts this as a follow-up message.
    undo_text: Optional[str] = None

    def field_pairs(self):
        """`fields` as `(label, value)` pairs, in the order they are shown."""
        if isinstance(self.fields, dict):
            return list(self.fields.items())
        return [(f.label, f.value) for f in self.fields]


def _no_env(value, where, pointer, problems):
    for ref in vars.references(value):
        if ref.namespace is Namespace.ENV:
            problems.append(
                (
                    pointer,
                    f"`{where}` uses `{ref.raw}`: environment values are expanded only in `url` "
                    "(a chat message must not carry a secret)",
                )
            )
        else:
            problems.append((pointer, f"`{where}` uses `{ref.raw}`: webhook-notify captures nothing"))


def _token(key):
    """`key` as a JSON pointer token: `~` as `~0`, `/` as `~1`."""
    return key.replace("~", "~0").replace("/", "~1")


def _field_keys(config):
    """`(label, value, label's pointer, value's pointer)` per field, in the
    order shown: a table's key is both the label and where its value is."""
    if isinstance(config.fields, dict):
        return [(label, value, f"/fields/{_token(label)}", f"/fields/{_token(label)}")
                for label, value in config.fields.items()]
    return [(f.label, f.value, f"/fields/{i}/label", f"/fields/{i}/value") for i, f in enumerate(config.fields)]


def validate(config):
    """Every problem with the config that needs neither the environment nor
    the network, at once, each at its key (a JSON pointer into the `with`
    table); raises `InvalidConfig`."""
    problems = []

    def at(pointer, message):
        problems.append((pointer, message))

    if not config.url.strip():
        at("/url", "`url` is empty")
    for ref in vars.references(config.url):
        if ref.namespace is not Namespace.ENV:
            at("/url", f"`url` uses `{ref.raw}`: only `${{env.NAME}}` references are expanded in `url`")
    if not vars.references(config.url):
        try:
            http.Url.parse(config.url, name="`url`")
        except http.HttpError as e:
            at("/url", e.message)
    if not config.runbook.strip():
        at("/runbook", "`runbook` is empty")
    elif len(config.runbook) > 200:
        at("/runbook", f"`runbook` has {len(config.runbook)} characters; at most 200")
    if not config.text.strip():
        at("/text", "`text` is empty")
    elif len(config.text) > MAX_TEXT:
        at("/text", f"`text` has {len(config.text)} characters; Slack takes at most {MAX_TEXT}")
    if config.title is not None:
        if not config.title.strip():
            at("/title", "`title` is empty (leave it out for no title)")
        elif len(config.title) > MAX_TITLE:
            at("/title", f"`title` has {len(config.title)} characters; Slack takes at most {MAX_TITLE}")
    fields = _field_keys(config)
    if len(fields) > MAX_FIELDS:
        at("/fields", f"`fields` has {len(fields)} entries; at most {MAX_FIELDS}")
    for label, _, label_at, _ in fields:
        if not label.strip():
            at(label_at, "`fields` has an empty label")
        elif len(label) > 200:
            at(label_at, f"`fields` label `{label[:40]}…` has {len(label)} characters; at most 200")
    if config.undo_text is not None:
        if not config.undo_text.strip():
            at("/undo_text", "`undo_text` is empty (leave it out for an undo that posts nothing)")
        elif len(config.undo_text) > MAX_TEXT:
            at("/undo_text", f"`undo_text` has {len(config.undo_text)} characters; Slack takes at most {MAX_TEXT}")
    for where, value in [("runbook", config.runbook), ("text", config.text), ("title", config.title or "")]:
        _no_env(value, where, f"/{where}", problems)
    _no_env(config.undo_text or "", "undo_text", "/undo_text", problems)
    for label, value, label_at, value_at in fields:
        _no_env(label, "fields", label_at, problems)
        _no_env(value, f"fields.{label}", value_at, problems)
    if config.color is not None:
        if config.format != "attachments":
            at("/color", '`color` applies only with `format = "attachments"` (Slack blocks have no colour)')
        elif not _COLOR.fullmatch(config.color):
            at("/color", f"`color` is `{config.color}`; write `good`, `warning`, `danger` or `#RRGGBB`")
    if config.timeout > MAX_TIMEOUT:
        at("/timeout", f"`timeout` is {config.timeout}; at most {MAX_TIMEOUT}")
    retry = config.retry
    if not 1 <= retry.attempts <= MAX_ATTEMPTS:
        at("/retry/attempts", f"`retry.attempts` is {retry.attempts}; write 1 to {MAX_ATTEMPTS}")
    if not 1.0 <= retry.backoff <= 10.0:
        at("/retry/backoff", f"`retry.backoff` is {retry.backoff}; write 1.0 to 10.0")
    if retry.max_interval > MAX_INTERVAL:
        at("/retry/max_interval", f"`retry.max_interval` is {retry.max_interval}; at most {MAX_INTERVAL}")
    if not problems:
        total = sum(w.millis for w in retry.waits())
        if total > MAX_TOTAL_WAIT.millis:
            at(
                "/retry",
                f"the waits between tries add up to {Duration(total)}; at most {MAX_TOTAL_WAIT} "
                "(fewer `retry.attempts`, a shorter `retry.interval` or a smaller `retry.backoff`)",
            )
    if problems:
        raise InvalidConfig.of(problems)


def webhook_url(config, env=vars.env):
    """The URL to post to, `${env.…}` expanded, parsed. Raises
    `Precondition` when a variable is unset and `InvalidConfig` when the
    result is not an http(s) URL; neither message shows the expanded URL."""
    try:
        text = vars.expand(config.url, lambda ns, name: env(name) if ns is Namespace.ENV else None)
    except vars.UnsetReference as e:
        raise Precondition(f"`url`: {e} (is the variable in the step's `env` grant and set for backout?)") from None
    refs = vars.references(config.url)
    name = f"`url` (from {', '.join(r.raw for r in refs)})" if refs else "`url`"
    try:
        return http.Url.parse(text, name=name)
    except http.HttpError as e:
        raise InvalidConfig(e.message, pointer="/url") from None


def url_shown(config, url):
    """How messages name the webhook: its origin, and where the URL came
    from. Never the path, which is the webhook's secret."""
    refs = vars.references(config.url)
    if refs:
        return f"{url.origin} (the URL in {', '.join(r.raw for r in refs)})"
    return url.origin


def describe_retry(config):
    retry = config.retry
    if retry.attempts == 1:
        return "1 attempt (no retries)"
    text = f"up to {retry.attempts} attempts, {retry.interval} apart"
    if retry.backoff != 1.0:
        text += f", ×{retry.backoff:g} after each failure (at most {retry.max_interval})"
    return text


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "webhook-notify config",
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "runbook", "text"],
    "properties": {
        "url": {
            "type": "string",
            "description": "the incoming webhook's URL, usually `${env.SLACK_WEBHOOK}`; its origin must be in the step's `net` grant",
        },
        "runbook": {"type": "string", "maxLength": 200, "description": "the runbook the message is about"},
        "text": {"type": "string", "maxLength": MAX_TEXT, "description": "the message (Slack mrkdwn / Markdown)"},
        "title": {"type": "string", "maxLength": MAX_TITLE, "description": "a heading above the text"},
        "fields": {
            "description": "label → value, shown as a table (keys sorted), or an array of {label, value} (in order); "
            "values may use ${steps.ID.outputs.KEY}",
            "oneOf": [
                {"type": "object", "maxProperties": MAX_FIELDS, "additionalProperties": {"type": "string"}},
                {
                    "type": "array",
                    "maxItems": MAX_FIELDS,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["label", "value"],
                        "properties": {"label": {"type": "string"}, "value": {"type": "string"}},
                    },
                },
            ],
        },
        "format": {"enum": ["blocks", "attachments"], "default": "blocks"},
        "color": {"type": "string", "pattern": "^(good|warning|danger|#[0-9A-Fa-f]{6})$"},
        "timeout": {"type": "string", "default": "10s", "description": "limit for one try (at most 2m)"},
        "retry": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "attempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS, "default": 3},
                "interval": {"type": "string", "default": "1s"},
                "backoff": {"type": "number", "minimum": 1, "maximum": 10, "default": 2.0},
                "max_interval": {"type": "string", "default": "30s"},
            },
        },
        "undo_text": {"type": "string", "maxLength": MAX_TEXT, "description": "undo posts this as a follow-up"},
    },
}
