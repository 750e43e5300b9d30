"""Posting one message with retries.

Retried: a 5xx or 429 answer, a refused connection, a timeout, a broken
connection (a server restarting). Not retried: any other 4xx (the request
itself is wrong, and sending it again cannot help), a 3xx (redirects are not
followed), a request the host denies. `Retry-After` (seconds or an HTTP date)
is honoured when it is no longer than `retry.max_interval`; a longer one ends
the retries, since trying earlier than the server asked would only be
refused again.

The transport, the clock and the sleep are parameters, so the logic is unit
tested natively with a fake server.
"""

import email.utils
import time
from dataclasses import dataclass

from backout_sdk import Duration, Failed, Transient, http
from backout_sdk.text import count

#: Most bytes read from a webhook's answer (Slack answers `ok`).
MAX_ANSWER = 64 * 1024


@dataclass
class Delivery:
    status: int
    attempts: int


def retry_after(value, now):
    """Seconds a `Retry-After` header asks to wait (`120` or an HTTP date),
    or None when it says nothing usable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def excerpt(response):
    text = " ".join(response.text().split())
    if not text:
        return ""
    return f" ({text[:200]}{'…' if len(text) > 200 else ''})"


REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def status_line(response):
    """`500 Internal Server Error (body excerpt)`."""
    reason = REASONS.get(response.status)
    return f"{response.status}{' ' + reason if reason else ''}{excerpt(response)}"


def post(url, body, config, shown, log, send=http.send, sleep=time.sleep, wall=time.time, monotonic=time.monotonic):
    """POSTs `body` (JSON bytes) to `url` (an `http.Url`) as `config` says.

    `shown` names the webhook in logs and errors (its origin; never the
    URL's path). Returns a `Delivery`; raises `Failed` when the server refused
    the message or the request cannot be sent, `Transient` when every
    attempt failed in a way that may pass."""
    retry = config.retry
    waits = retry.waits()
    attempts = retry.attempts
    maybe_posted = False
    for attempt in range(1, attempts + 1):
        request = http.Request(
            "POST",
            str(url),
            headers=[("content-type", "application/json; charset=utf-8")],
            body=body,
            timeout=config.timeout,
            max_body=MAX_ANSWER,
        )
        started = monotonic()
        asked = None
        try:
            response = send(request)
        except http.BodyTooLarge:
            raise Failed(
                f"POST {shown}: the answer is larger than {MAX_ANSWER // 1024} KiB; "
                "the message was probably posted (not retried, so it is not posted twice)"
            ) from None
        except http.HttpError as e:
            if not e.transient:
                raise Failed(
                    f"POST {shown}: {e} (not retried: trying again cannot help); no message was posted"
                ) from None
            if isinstance(e, (http.Timeout, http.Protocol)):
                maybe_posted = True
            what = str(e)
        else:
            took = Duration.of_seconds(monotonic() - started)
            if response.is_success:
                log.info(f"POST {shown}: {response.status} in {took} (attempt {attempt} of {attempts})")
                return Delivery(response.status, attempt)
            if 300 <= response.status < 400:
                target = response.header("location")
                where = ""
                if target:
                    try:
                        where = f" to {http.Url.parse(target).origin}"
                    except http.HttpError:
                        where = ""
                raise Failed(
                    f"POST {shown}: answered {response.status}, a redirect{where}; redirects are not followed "
                    "(grant and configure the URL it names); no message was posted"
                )
            if response.status != 429 and response.status < 500:
                raise Failed(
                    f"POST {shown}: the server refused the message with {status_line(response)} "
                    "(not retried: a 4xx answer means the request itself is wrong, for example a revoked "
                    "webhook or an invalid payload); no message was posted"
                )
            what = status_line(response)
            asked = retry_after(response.header("retry-after"), wall())
        if attempt == attempts:
            break
        wait = waits[attempt - 1]
        if asked is not None:
            if asked > retry.max_interval.seconds:
                raise Transient(
                    f"POST {shown}: {what}; the server asks to retry after {Duration.of_seconds(asked)}, "
                    f"longer than `retry.max_interval` ({retry.max_interval}): gave up after "
                    f"{count(attempt, 'attempt')}{_maybe(maybe_posted)}"
                )
            wait = max(wait, Duration.of_seconds(asked))
        log.warn(f"POST {shown}: {what} (attempt {attempt} of {attempts}); trying again in {wait}")
        sleep(wait.seconds)
    raise Transient(
        f"POST {shown}: gave up after {count(attempts, 'attempt')}; the last one: {what}{_maybe(maybe_posted)}"
    )


def _maybe(maybe_posted):
    if maybe_posted:
        return " (an attempt that timed out or lost its connection may have posted the message)"
    return "; no message was posted"
