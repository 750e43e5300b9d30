"""Native unit tests of webhook-notify's logic: config checks, the payload,
and the retry rules against a fake transport. The e2e tests
(tests/e2e/webhook_notify.rs) run the built component against a real server."""

import json
import os
import sys
import unittest
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "sdk", "python"))

import app  # noqa: E402
import delivery  # noqa: E402
import payload  # noqa: E402
import settings  # noqa: E402
from backout_sdk import Calls, Duration, Failed, InvalidConfig, Precondition, Transient, http  # noqa: E402
from backout_sdk.config import parse  # noqa: E402

HOOK = "https://hooks.example.com/services/T0/B0/s3cr3tpath"


def config(**changes):
    value = {"url": "${env.SLACK_WEBHOOK}", "runbook": "db-rollback", "text": "Restored the database."}
    value.update(changes)
    return parse(settings.Config, value)


class Log:
    def __init__(self):
        self.lines = []

    def info(self, m):
        self.lines.append(("info", m))

    def warn(self, m):
        self.lines.append(("warn", m))


class FakeServer:
    """Answers from a script: each item a status (with optional headers) or an HttpError to raise."""

    def __init__(self, *script):
        self.script = list(script)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        status, headers = step if isinstance(step, tuple) else (step, [])
        return http.Response(status, headers, b"ok" if status < 300 else b"nope")


def post(server, cfg=None, wall=1000.0):
    cfg = cfg or config(retry={"attempts": 3, "interval": "1s"})
    sleeps = []
    log = Log()
    url = http.Url.parse(HOOK)
    result = delivery.post(url, b"{}", cfg, url.origin, log, send=server, sleep=sleeps.append,
                           wall=lambda: wall, monotonic=lambda: 0.0)
    return result, sleeps, log


class SettingsTest(unittest.TestCase):
    def test_defaults(self):
        c = config()
        self.assertEqual((c.format, c.timeout, c.retry.attempts), ("blocks", Duration(10_000), 3))
        self.assertEqual([str(w) for w in c.retry.waits()], ["1s", "2s"])
        settings.validate(c)

    def test_every_problem_is_reported_at_once(self):
        c = config(runbook="", title="x" * 151, color="red", retry={"attempts": 0}, text="${env.TOKEN}")
        with self.assertRaises(InvalidConfig) as e:
            settings.validate(c)
        m = e.exception.message
        for part in ["`runbook` is empty", "`title` has 151 characters", "`color` applies only",
                     "`retry.attempts` is 0", "`text` uses `${env.TOKEN}`"]:
            self.assertIn(part, m)

    def test_each_problem_names_its_key(self):
        def pointers(**changes):
            with self.assertRaises(InvalidConfig) as e:
                settings.validate(config(**changes))
            return [p for p, _ in e.exception.problems]

        self.assertEqual(pointers(url=" "), ["/url", "/url"])
        self.assertEqual(pointers(runbook=""), ["/runbook"])
        self.assertEqual(pointers(text="${env.TOKEN}"), ["/text"])
        self.assertEqual(pointers(title=""), ["/title"])
        self.assertEqual(pointers(undo_text="x" * 3001), ["/undo_text"])
        self.assertEqual(pointers(fields={"a/b": "${env.X}"}), ["/fields/a~1b"])
        self.assertEqual(pointers(fields=[{"label": "ok", "value": "1"}, {"label": " ", "value": "2"}]), ["/fields/1/label"])
        self.assertEqual(pointers(fields=[{"label": "ok", "value": "${env.X}"}]), ["/fields/0/value"])
        # `color` without `format = "attachments"`: `color` is the key out of place.
        self.assertEqual(pointers(color="good"), ["/color"])
        self.assertEqual(pointers(timeout="3m"), ["/timeout"])
        self.assertEqual(pointers(retry={"attempts": 0, "backoff": 20}), ["/retry/attempts", "/retry/backoff"])
        self.assertEqual(pointers(retry={"attempts": 10, "interval": "5m", "max_interval": "5m"}), ["/retry"])
        with self.assertRaises(InvalidConfig) as e:
            settings.webhook_url(config(), env={"SLACK_WEBHOOK": "ftp://hooks/x"}.get)
        self.assertEqual(e.exception.pointer, "/url")

    def test_bad_colors_and_long_waits(self):
        with self.assertRaises(InvalidConfig) as e:
            settings.validate(config(format="attachments", color="red"))
        self.assertIn("`#RRGGBB`", e.exception.message)
        settings.validate(config(format="attachments", color="#2eb886"))
        with self.assertRaises(InvalidConfig) as e:
            settings.validate(config(retry={"attempts": 10, "interval": "5m", "max_interval": "5m"}))
        self.assertIn("add up to", e.exception.message)

    def test_the_url_is_expanded_and_never_shown(self):
        url = settings.webhook_url(config(), env={"SLACK_WEBHOOK": HOOK}.get)
        self.assertEqual(str(url), HOOK)
        self.assertEqual(settings.url_shown(config(), url), "https://hooks.example.com:443 (the URL in ${env.SLACK_WEBHOOK})")
        with self.assertRaises(Precondition) as e:
            settings.webhook_url(config(), env={}.get)
        self.assertIn("`${env.SLACK_WEBHOOK}` is not set", e.exception.message)
        with self.assertRaises(InvalidConfig) as e:
            settings.webhook_url(config(), env={"SLACK_WEBHOOK": "ftp://hooks/s3cr3tpath"}.get)
        self.assertNotIn("s3cr3tpath", e.exception.message)
        self.assertIn("from ${env.SLACK_WEBHOOK}", e.exception.message)

    def test_literal_urls_are_checked_without_the_environment(self):
        with self.assertRaises(InvalidConfig) as e:
            settings.validate(config(url="hooks.slack.com/services/x"))
        self.assertIn("`url` is not an absolute URL", e.exception.message)
        with self.assertRaises(InvalidConfig):
            settings.validate(config(url="${captures.x}"))


class PayloadTest(unittest.TestCase):
    def test_blocks_carry_title_text_fields_and_runbook(self):
        c = config(title="DB rolled back", fields={"sha256": "abc", "note": "<b>&"})
        message, clipped = payload.render(c)
        self.assertEqual(clipped, [])
        self.assertEqual(message["text"], "DB rolled back\nRestored the database.\n• sha256: abc\n• note: &lt;b&gt;&amp;\n"
                                          "(runbook `db-rollback` · backout)")
        types = [b["type"] for b in message["blocks"]]
        self.assertEqual(types, ["header", "section", "section", "context"])
        self.assertEqual(message["blocks"][0]["text"]["text"], "DB rolled back")
        self.assertEqual(message["blocks"][2]["fields"][0], {"type": "mrkdwn", "text": "*sha256*\nabc"})

    def test_fields_are_split_ten_per_section_and_long_values_cut(self):
        fields = {f"f{i}": str(i) for i in range(23)}
        fields["f0"] = "x" * 2500
        fields["f1"] = ""
        message, clipped = payload.render(config(fields=fields))
        sections = [b for b in message["blocks"] if "fields" in b]
        self.assertEqual([len(s["fields"]) for s in sections], [10, 10, 3])
        self.assertEqual(clipped, ["f0"])
        self.assertEqual(len(sections[0]["fields"][0]["text"]), len("*f0*\n") + 2000)
        self.assertEqual(sections[0]["fields"][1]["text"], "*f1*\n(empty)")

    def test_attachments(self):
        message, _ = payload.render(config(format="attachments", color="good", title="T", fields={"a": "b"}))
        self.assertEqual(message["text"], "T")
        (att,) = message["attachments"]
        self.assertEqual((att["color"], att["text"], att["fields"]), ("good", "Restored the database.",
                                                                       [{"title": "a", "value": "b", "short": True}]))
        self.assertEqual(att["footer"], "runbook `db-rollback` · backout")
        message, _ = payload.render(config(format="attachments"))
        self.assertEqual(message["text"], "Restored the database.")
        self.assertNotIn("text", message["attachments"][0])

    def test_fields_as_an_array_keep_their_order(self):
        c = config(fields=[{"label": "zeta", "value": "1"}, {"label": "alpha", "value": "2"}])
        settings.validate(c)
        message, _ = payload.render(c)
        self.assertEqual([f["text"] for f in message["blocks"][1]["fields"]], ["*zeta*\n1", "*alpha*\n2"])
        with self.assertRaises(Exception) as e:
            config(fields=[{"label": "x", "valeu": "1"}])
        self.assertIn("`fields[0]`: unknown field `valeu`", str(e.exception))

    def test_encoding_is_compact_utf8(self):
        self.assertEqual(payload.encode({"text": "é"}), '{"text":"é"}'.encode())


class DeliveryTest(unittest.TestCase):
    def test_one_post_on_success(self):
        server = FakeServer(200)
        result, sleeps, log = post(server)
        self.assertEqual((result.status, result.attempts, sleeps), (200, 1, []))
        (request,) = server.requests
        self.assertEqual((request.method, request.body), ("POST", b"{}"))
        self.assertIn(("content-type", "application/json; charset=utf-8"), request.headers)
        self.assertEqual(request.timeout, 10.0)

    def test_5xx_429_and_connection_errors_are_retried_with_backoff(self):
        server = FakeServer(500, http.ConnectionRefused("nothing"), 200)
        result, sleeps, log = post(server)
        self.assertEqual((result.attempts, sleeps), (3, [1.0, 2.0]))
        self.assertIn("500 Internal Server Error (nope) (attempt 1 of 3)", log.lines[0][1])

    def test_retry_after_is_honoured_within_max_interval(self):
        server = FakeServer((429, [("retry-after", "5")]), 200)
        _, sleeps, _ = post(server)
        self.assertEqual(sleeps, [5.0])
        date = "Thu, 01 Jan 1970 00:16:50 GMT"  # 1010 s after the epoch; the fake clock says 1000
        _, sleeps, _ = post(FakeServer((503, [("retry-after", date)]), 200))
        self.assertEqual(sleeps, [10.0])
        with self.assertRaises(Transient) as e:
            post(FakeServer((429, [("retry-after", "120")]), 200))
        self.assertIn("asks to retry after 2m, longer than `retry.max_interval` (30s)", e.exception.message)

    def test_giving_up_says_how_often_and_why(self):
        with self.assertRaises(Transient) as e:
            post(FakeServer(500, 502, 503))
        self.assertEqual(e.exception.message, "POST https://hooks.example.com:443: gave up after 3 attempts; the last one: "
                                              "503 Service Unavailable (nope); no message was posted")
        with self.assertRaises(Transient) as e:
            post(FakeServer(http.Timeout("no response within 10s"), 500, 500))
        self.assertIn("may have posted the message", e.exception.message)

    def test_4xx_redirects_and_denials_are_not_retried(self):
        for step, expected in [(404, "refused the message with 404 Not Found (nope)"),
                               ((301, [("location", "https://elsewhere.example/x")]), "a redirect to https://elsewhere.example:443"),
                               (http.Denied("http://x:80 is not granted"), "denied: http://x:80 is not granted (not retried")]:
            server = FakeServer(step, 200)
            with self.assertRaises(Failed) as e:
                post(server)
            self.assertIn(expected, e.exception.message)
            self.assertEqual(len(server.requests), 1)

    def test_retry_after_parsing(self):
        self.assertEqual(delivery.retry_after("7", 0), 7.0)
        self.assertIsNone(delivery.retry_after("soon", 0))
        self.assertIsNone(delivery.retry_after(None, 0))
        self.assertEqual(delivery.retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 20.0), 0.0)


class PlanTest(unittest.TestCase):
    def setUp(self):
        os.environ["SLACK_WEBHOOK"] = HOOK
        self.addCleanup(os.environ.pop, "SLACK_WEBHOOK")

    def test_plan_checks_the_origin_with_a_get_and_sends_nothing(self):
        asked = []
        with mock.patch.object(app.http, "check", lambda m, u: asked.append((m, u))), \
             mock.patch.object(app.http, "send", side_effect=AssertionError("plan sent a request")):
            actions = Calls(app.WebhookNotify).plan(json.dumps({"url": "${env.SLACK_WEBHOOK}", "runbook": "r", "text": "t"}))
        self.assertEqual(asked, [("GET", "https://hooks.example.com:443/")])
        (action,) = actions
        self.assertEqual(action.summary, "post a message about `r` to https://hooks.example.com:443 (the URL in ${env.SLACK_WEBHOOK})")
        self.assertNotIn("s3cr3tpath", action.summary + action.detail)

    def test_an_ungranted_origin_fails_the_plan(self):
        with mock.patch.object(app.http, "check", lambda m, u: "https://hooks.example.com:443 is not granted"):
            with self.assertRaises(InvalidConfig) as e:
                Calls(app.WebhookNotify).plan(json.dumps({"url": "${env.SLACK_WEBHOOK}", "runbook": "r", "text": "t"}))
        self.assertIn("is not granted", e.exception.message)

    def test_undo_without_undo_text_changes_nothing(self):
        outputs = {"status": 200, "attempts": 1, "sha256": "ab" * 32, "bytes": 10,
                   "origin": "https://hooks.example.com:443", "sent_at": "2026-11-23T12:00:00Z"}
        with mock.patch.object(app.http, "send", side_effect=AssertionError("undo sent a request")):
            summary, out = Calls(app.WebhookNotify).undo(
                json.dumps({"url": "${env.SLACK_WEBHOOK}", "runbook": "r", "text": "t"}), json.dumps(outputs))
        self.assertIn("cannot be unsent", summary)
        self.assertEqual(json.loads(out), outputs)


if __name__ == "__main__":
    unittest.main()
