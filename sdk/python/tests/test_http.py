import unittest

from backout_sdk import http


class UrlTest(unittest.TestCase):
    """The same cases as the Rust SDK's `http` tests."""

    def test_urls_split_into_scheme_authority_and_path(self):
        url = http.Url.parse("http://127.0.0.1:3000/health?full=1#top")
        self.assertEqual((url.scheme, url.host, url.port), ("http", "127.0.0.1", 3000))
        self.assertEqual(url.path_with_query, "/health?full=1")
        self.assertEqual(url.authority, "127.0.0.1:3000")
        self.assertEqual(url.origin, "http://127.0.0.1:3000")
        self.assertEqual(str(url), "http://127.0.0.1:3000/health?full=1")

    def test_missing_path_port_and_case_are_normalised(self):
        url = http.Url.parse("HTTPS://Example.COM")
        self.assertEqual((url.scheme, url.host, url.port), ("https", "example.com", None))
        self.assertEqual(url.path_with_query, "/")
        self.assertEqual(url.origin, "https://example.com:443")
        self.assertEqual(http.Url.parse("http://h?q=1").path_with_query, "/?q=1")

    def test_ipv6_hosts_keep_their_brackets(self):
        url = http.Url.parse("http://[::1]:8080/x")
        self.assertEqual((url.host, url.port, url.authority), ("[::1]", 8080, "[::1]:8080"))
        self.assertEqual(http.Url.parse("http://[::1]/").origin, "http://[::1]:80")

    def test_unsupported_urls_are_refused_with_a_reason(self):
        cases = [
            ("ftp://h/x", "only `http` and `https`"),
            ("127.0.0.1:3000/health", "not an absolute URL"),
            ("http://user:pw@h/", "credentials"),
            ("http:///path", "has no host"),
            ("http://h:0/", "invalid port `0`"),
            ("http://h:99999/", "invalid port"),
            ("http://h:/", "invalid port ``"),
            ("http://h:+80/", "invalid port"),
            ("http://h/a b", "whitespace"),
            ("http://h/é", "percent-encode"),
            ("http://h\\x/", "invalid host"),
            ("http://[::1/", "closing `]`"),
            ("http://[zz]/", "invalid IPv6"),
            ("http://h/a\\b", "backslash"),
        ]
        for url, expected in cases:
            with self.subTest(url=url):
                with self.assertRaises(http.InvalidUrl) as e:
                    http.Url.parse(url)
                self.assertIn(expected, str(e.exception))

    def test_a_named_url_is_not_quoted_in_errors(self):
        with self.assertRaises(http.InvalidUrl) as e:
            http.Url.parse("ftp://hooks/secret-path", name="the URL in ${env.HOOK}")
        self.assertNotIn("secret-path", str(e.exception))
        self.assertIn("the URL in ${env.HOOK}", str(e.exception))


class RequestTest(unittest.TestCase):
    def test_methods_are_upper_cased_tokens(self):
        self.assertEqual(http.normalize_method("get"), "GET")
        self.assertEqual(http.normalize_method("PURGE"), "PURGE")
        for bad in ("GE T", ""):
            with self.assertRaises(http.InvalidRequest):
                http.normalize_method(bad)

    def test_header_checks_never_show_the_value(self):
        http.validate_header("Authorization", "Bearer x")
        with self.assertRaises(http.InvalidRequest) as e:
            http.validate_header("Authorization", "Bearer s3cret\r\nX: y")
        self.assertIn("line break", str(e.exception))
        self.assertNotIn("s3cret", str(e.exception))
        with self.assertRaises(http.InvalidRequest) as e:
            http.validate_header("Host", "evil")
        self.assertIn("set by the host", str(e.exception))
        for name in ("bad name", ""):
            with self.assertRaises(http.InvalidRequest):
                http.validate_header(name, "v")

    def test_json_bodies_get_a_content_type_and_a_length(self):
        r = http.Request("POST", "http://h/", json={"a": 1})
        self.assertEqual(r.body, b'{"a":1}')
        self.assertEqual(http._headers_to_send(r), [("content-type", "application/json"), ("content-length", "7")])
        r = http.Request("POST", "http://h/", headers={"Content-Type": "application/vnd.api+json"}, json=None)
        self.assertEqual(r.headers, [("Content-Type", "application/vnd.api+json")])
        self.assertEqual(http._headers_to_send(http.Request("GET", "http://h/")), [])

    def test_response_helpers(self):
        r = http.Response(204, [("content-type", "application/json")], b'{"ok":true}')
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertIsNone(r.header("x"))
        self.assertTrue(r.is_success)
        self.assertEqual(r.json(), {"ok": True})
        self.assertEqual(http.Response(200, [], b"\xffa").text(), "\ufffda")

    def test_errors_read_well(self):
        self.assertEqual(str(http.BodyTooLarge(1 << 20)), "the response body is larger than the limit of 1 MiB")
        self.assertEqual(str(http.ConnectionRefused("x")), "connection refused: x")
        self.assertEqual(str(http.Denied("no")), "denied: no")
        self.assertTrue(http.Timeout("x").transient)
        self.assertFalse(http.Denied("x").transient)
        self.assertEqual([http.show_duration(s) for s in (0.25, 5, 1.5)], ["250ms", "5s", "1.5s"])

    def test_outside_a_component_requests_fail_cleanly(self):
        with self.assertRaises(http.Other) as e:
            http.send(http.Request("GET", "http://127.0.0.1:1/"))
        self.assertEqual(str(e.exception), http.NOT_IN_A_COMPONENT)
        self.assertEqual(http.check("GET", "http://127.0.0.1:1/"), http.NOT_IN_A_COMPONENT)
        # Checks this side of the host come first.
        with self.assertRaises(http.InvalidUrl):
            http.send(http.Request("GET", "ftp://h/"))
        self.assertTrue(http.check("GET", "nope").startswith("invalid URL"))


if __name__ == "__main__":
    unittest.main()
