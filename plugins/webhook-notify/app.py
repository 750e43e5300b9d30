"""webhook-notify: posts a message about the run to a Slack-compatible
incoming webhook (Slack, Mattermost, Rocket.Chat, …): the "tell the team"
part of a rollback runbook.

- describe: who it is; it needs the network.
- plan: checks the config, expands `${env.…}` in `url` (without showing it),
  asks the host whether the webhook's origin is granted, and sends nothing.
- run: posts the message once (retrying as configured) and records the
  status, the attempts and the sha256 of the exact bytes posted.
- verify: a posted message cannot be read back through a webhook, and
  posting again would duplicate it: it checks nothing and says so.
- undo: a message cannot be unsent. With `undo_text`, it posts that as a
  follow-up; without, it changes nothing and says so.

The webhook URL is a secret (whoever has it can post to the channel): logs,
outputs and errors name only its origin.
"""

import time
from dataclasses import dataclass
from typing import Optional

import delivery
import payload
import settings
from backout_sdk import Action, Info, InvalidConfig, Needs, Outcome, Plugin, export, fs, http, log
from backout_sdk.text import count

VERSION = "0.1.0"


@dataclass
class Outputs:
    #: The HTTP status of the answer that accepted the message.
    status: int
    #: Tries it took, the successful one included.
    attempts: int
    #: sha256 of the exact bytes posted (compact JSON, UTF-8).
    sha256: str
    #: Size of the message in bytes.
    bytes: int
    #: The webhook's origin (`https://hooks.slack.com:443`), never its path.
    origin: str
    #: When it was accepted, UTC (`2026-11-23T12:05:40Z`).
    sent_at: str
    #: `undo` only: the sha256 of the message it follows up on.
    follow_up_of: Optional[str] = None


def _summary_detail(config, url):
    parts = []
    if config.title:
        parts.append(f"title {config.title!r}")
    lines = config.text.strip().splitlines() or [""]
    more = "…" if len(lines[0]) > 80 or len(lines) > 1 else ""
    parts.append(f"text {lines[0][:80]!r}{more}")
    labels = [label for label, _ in config.field_pairs()]
    if labels:
        parts.append(f"{count(len(labels), 'field')} ({', '.join(labels)})")
    parts.append("Slack blocks + text" if config.format == "blocks" else "attachment" + (f" ({config.color})" if config.color else ""))
    lines = ["; ".join(parts)]
    lines.append(f"timeout {config.timeout}; {settings.describe_retry(config)}")
    lines.append(
        "sent by run, once; plan sends nothing"
        + ("; undo posts `undo_text` as a follow-up" if config.undo_text else "; undo cannot unsend it")
    )
    return "\n".join(lines)


def _deliver(config, text=None, title=None, fields=None):
    """Renders and posts one message; returns its outputs."""
    url = settings.webhook_url(config)
    shown = settings.url_shown(config, url)
    message, clipped = payload.render(config, text=text, title=title, fields=fields)
    for label in clipped:
        log.warn(f"field `{label}` is longer than {settings.MAX_FIELD_VALUE} characters; cut")
    body = payload.encode(message)
    digest = fs.sha256_hex(body)
    log.info(f"posting {len(body)} bytes (sha256 {digest[:12]}…) to {shown}")
    done = delivery.post(url, body, config, shown, log)
    return Outputs(
        status=done.status,
        attempts=done.attempts,
        sha256=digest,
        bytes=len(body),
        origin=url.origin,
        sent_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


class WebhookNotify(Plugin):
    Config = settings.Config
    Outputs = Outputs

    def describe(self):
        return Info(
            "webhook-notify",
            VERSION,
            "post a message about the run to a Slack-compatible incoming webhook (Slack, Mattermost, …)",
            config_schema=settings.SCHEMA,
            needs=Needs(network=True),
        )

    def plan(self, config):
        settings.validate(config)
        url = settings.webhook_url(config)
        # `plan` itself may only send GET and HEAD, and the host answers
        # `check-request` for the current call, so a POST would be refused
        # here whatever the grant: ask about the origin with a GET. Grants
        # name origins, not methods, so the answer holds for run's POST.
        reason = http.check("GET", f"{url.origin}/")
        if reason is not None:
            raise InvalidConfig(
                f"`url`: the step may not reach the webhook at {settings.url_shown(config, url)}: {reason}", pointer="/url"
            )
        return [
            Action(
                f"post a message about `{config.runbook}` to {settings.url_shown(config, url)}",
                _summary_detail(config, url),
            )
        ]

    def run(self, config):
        settings.validate(config)
        out = _deliver(config)
        return Outcome(
            f"posted the message to {out.origin} ({out.status}, {count(out.attempts, 'attempt')})",
            out,
        )

    def verify(self, config, outputs):
        log.info(
            f"nothing to re-check: the message posted to {outputs.origin} at {outputs.sent_at} "
            f"(sha256 {outputs.sha256[:12]}…) cannot be read back through a webhook, and verify does not post again"
        )

    def undo(self, config, outputs):
        settings.validate(config)
        if config.undo_text is None:
            return Outcome(
                f"nothing undone: the message posted to {outputs.origin} at {outputs.sent_at} cannot be unsent "
                "(set `undo_text` to post a follow-up)",
                outputs,
            )
        out = _deliver(config, text=config.undo_text, title="", fields=[])
        out.follow_up_of = outputs.sha256
        return Outcome(
            f"posted a follow-up to {out.origin} ({out.status}); the message posted at {outputs.sent_at} cannot be unsent",
            out,
        )


Step = export(WebhookNotify)
