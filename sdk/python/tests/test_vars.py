import os
import unittest

from backout_sdk import vars
from backout_sdk.vars import Namespace, Reference, UnsetReference


def lookup(ns, name):
    return {
        (Namespace.ENV, "API_KEY"): "k3y",
        (Namespace.ENV, "EMPTY"): "",
        (Namespace.CAPTURES, "id"): "42",
        (Namespace.CAPTURES, "memory-id"): "m-1",
    }.get((ns, name))


class VarsTest(unittest.TestCase):
    """The same cases as the Rust SDK's `vars` tests."""

    def test_text_without_references_is_unchanged(self):
        self.assertEqual(vars.expand("plain $text {x}", lookup), "plain $text {x}")
        self.assertEqual(vars.expand("", lookup), "")

    def test_env_and_captures_are_expanded_in_place(self):
        self.assertEqual(vars.expand("Bearer ${env.API_KEY}", lookup), "Bearer k3y")
        self.assertEqual(
            vars.expand("/memories/${captures.id}?k=${env.API_KEY}&m=${captures.memory-id}", lookup),
            "/memories/42?k=k3y&m=m-1",
        )
        self.assertEqual(vars.expand("${captures.id}${captures.id}", lookup), "4242")
        self.assertEqual(vars.expand("${ env.API_KEY }", lookup), "k3y")
        self.assertEqual(vars.expand("[${env.EMPTY}]", lookup), "[]")

    def test_a_missing_value_is_an_error_naming_the_reference(self):
        with self.assertRaises(UnsetReference) as e:
            vars.expand("x ${env.NOPE}", lookup)
        self.assertEqual(str(e.exception), "`${env.NOPE}` is not set in the host's environment")
        with self.assertRaises(UnsetReference) as e:
            vars.expand("${captures.other}", lookup)
        self.assertEqual(str(e.exception), "`${captures.other}` has not been captured")

    def test_other_placeholders_stay_verbatim(self):
        for text in ["${vars.x}", "${steps.a.outputs.b}", "${env}", "${env.}", "${env.A.B}", "${env.A B}", "${env.A"]:
            self.assertEqual(vars.expand(text, lookup), text)
            self.assertEqual(vars.references(text), [])
        self.assertEqual(vars.expand("${x ${env.API_KEY}", lookup), "${x k3y")

    def test_values_are_not_expanded_again(self):
        self.assertEqual(vars.expand("${captures.id}", lambda ns, n: "${env.API_KEY}"), "${env.API_KEY}")

    def test_references_report_namespace_name_and_span(self):
        refs = vars.references("a${env.A_1}b${captures.x}")
        self.assertEqual(refs, [Reference(Namespace.ENV, "A_1", 1, 11), Reference(Namespace.CAPTURES, "x", 12, 25)])
        self.assertEqual(refs[0].raw, "${env.A_1}")

    def test_expand_only_keeps_the_other_namespace(self):
        shown = vars.expand_only("/m/${captures.id}?k=${env.API_KEY}", Namespace.CAPTURES,
                                 lambda n: lookup(Namespace.CAPTURES, n))
        self.assertEqual(shown, "/m/42?k=${env.API_KEY}")
        with self.assertRaises(UnsetReference):
            vars.expand_only("${captures.nope}", Namespace.CAPTURES, lambda n: None)

    def test_non_ascii_text_around_references_is_kept(self):
        self.assertEqual(vars.expand("é${captures.id}€", lookup), "é42€")

    def test_env_reads_the_process_environment(self):
        self.assertIsNone(vars.env("BACKOUT_SDK_SURELY_UNSET_VARIABLE"))
        os.environ["BACKOUT_SDK_TEST_VAR"] = "v"
        try:
            self.assertEqual(vars.expand("${env.BACKOUT_SDK_TEST_VAR}", vars.env_only), "v")
        finally:
            del os.environ["BACKOUT_SDK_TEST_VAR"]
        self.assertIsNone(vars.env_only(Namespace.CAPTURES, "PATH"))
        self.assertFalse(vars.is_valid_name("a.b"))
        self.assertFalse(vars.is_valid_name("é"))


if __name__ == "__main__":
    unittest.main()
