"""The JSON a Slack-compatible incoming webhook receives.

Both formats carry a top-level `text`, which every Slack-compatible server
shows or uses for notifications:

- `blocks` (default): `text` is the whole message as plain lines (title,
  text, one `• label: value` line per field, the runbook), which Mattermost
  and other servers without Block Kit show; `blocks` is the same message laid
  out for Slack (a header, the text, the fields two columns wide, a context
  line), which Slack shows instead.
- `attachments`: `text` is the title (or the text when there is no title);
  one legacy attachment holds the text, the fields, the runbook as its
  footer, and `color`. Slack and Mattermost both render it.
"""

import json

from settings import MAX_FIELD_VALUE

FIELDS_PER_SECTION = 10


def escape(text):
    """Slack's escaping for text it parses as mrkdwn: `&`, `<` and `>`.
    Applied to values that come from data (field labels and values), not to
    the runbook's own `text`, which may hold links such as `<https://x|docs>`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(value, limit=MAX_FIELD_VALUE):
    """`value` cut to `limit` characters (with `…`), and whether it was cut.
    An empty value shows as `(empty)`: Slack refuses empty text."""
    if value == "":
        return "(empty)", False
    if len(value) <= limit:
        return value, False
    return value[: limit - 1] + "…", True


def footer(runbook):
    return f"runbook `{runbook}` · backout"


def render(config, text=None, title=None, fields=None):
    """The payload for `config` (a `settings.Config`) as a dict, with `text`,
    `title` and `fields` (`(label, value)` pairs) overriding the config's
    (for undo's follow-up).
    Returns `(payload, clipped)`: the labels of fields whose value was cut."""
    text = config.text if text is None else text
    title = config.title if title is None else title or None
    pairs = config.field_pairs() if fields is None else list(fields)
    shown = []
    clipped = []
    for label, value in pairs:
        value, cut = clip(value)
        if cut:
            clipped.append(label)
        shown.append((escape(label), escape(value)))

    if config.format == "attachments":
        attachment = {"fallback": _plain(title, text, shown, config.runbook), "mrkdwn_in": ["text", "fields"]}
        if config.color:
            attachment["color"] = config.color
        if title:
            attachment["text"] = text
        if shown:
            attachment["fields"] = [{"title": k, "value": v, "short": len(v) <= 40} for k, v in shown]
        attachment["footer"] = footer(config.runbook)
        return {"text": title or text, "attachments": [attachment]}, clipped

    blocks = []
    if title:
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}})
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    for start in range(0, len(shown), FIELDS_PER_SECTION):
        chunk = shown[start : start + FIELDS_PER_SECTION]
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in chunk]})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer(config.runbook)}]})
    return {"text": _plain(title, text, shown, config.runbook), "blocks": blocks}, clipped


def _plain(title, text, fields, runbook):
    lines = [title] if title else []
    lines.append(text)
    lines.extend(f"• {k}: {v}" for k, v in fields)
    lines.append(f"({footer(runbook)})")
    return "\n".join(lines)


def encode(payload):
    """The exact bytes posted: compact JSON, UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
