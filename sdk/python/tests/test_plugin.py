import json
import unittest
from dataclasses import dataclass

from backout_sdk import Action, Calls, Effect, Failed, Info, InvalidConfig, Outcome, Plugin, Precondition, export


@dataclass
class Config:
    name: str


@dataclass
class Outputs:
    greeted: str


class Greet(Plugin):
    Config = Config
    Outputs = Outputs

    def describe(self):
        return Info("greet", "0.1.0", "say hello")

    def plan(self, config):
        if config.name == "nobody":
            raise Precondition("nobody is there")
        return [Action(f"greet {config.name}")]

    def run(self, config):
        return Outcome(f"greeted {config.name}", Outputs(config.name))

    def verify(self, config, outputs):
        if outputs.greeted != config.name:
            raise Precondition("greeted someone else")

    def undo(self, config, outputs):
        return Outcome("cannot ungreet", {"bad": object()})


class CallsTest(unittest.TestCase):
    def test_json_in_and_out(self):
        calls = Calls(Greet)
        self.assertEqual(calls.describe().name, "greet")
        self.assertEqual(calls.plan('{"name": "ada"}'), [Action("greet ada")])
        summary, outputs = calls.run('{"name": "ada"}')
        self.assertEqual((summary, json.loads(outputs)), ("greeted ada", {"greeted": "ada"}))
        calls.verify('{"name": "ada"}', outputs)

    def test_errors_keep_their_variant(self):
        calls = Calls(Greet)
        with self.assertRaises(InvalidConfig) as e:
            calls.plan('{"name": "ada", "nmae": "x"}')
        self.assertEqual(e.exception.message, "unknown field `nmae`, expected `name`")
        self.assertEqual(str(e.exception), "invalid config: unknown field `nmae`, expected `name`")
        with self.assertRaises(Precondition):
            calls.plan('{"name": "nobody"}')
        with self.assertRaises(Precondition):
            calls.verify('{"name": "ada"}', '{"greeted": "bob", "later": 1}')
        with self.assertRaises(InvalidConfig) as e:
            calls.verify('{"name": "ada"}', "{}")
        self.assertIn("outputs of the earlier run are not usable", e.exception.message)
        with self.assertRaises(Failed) as e:
            calls.undo('{"name": "ada"}', '{"greeted": "ada"}')
        self.assertIn("cannot encode outputs", e.exception.message)

    def test_a_config_error_names_its_key_by_pointer_on_the_wire(self):
        with self.assertRaises(InvalidConfig) as caught:
            Calls(Greet).plan(json.dumps({"name": 3}))
        self.assertEqual(caught.exception.pointer, "/name")
        self.assertEqual(caught.exception.wire(), "`#/name`: " + caught.exception.message)
        spaced = InvalidConfig("`set.\"A B\"` is not a valid key", pointer="/set/A B")
        self.assertEqual(spaced.wire(), "`#/set/A%20B`: `set.\"A B\"` is not a valid key")
        self.assertEqual(InvalidConfig("whole").wire(), "whole")

    def test_several_config_problems_each_name_their_key_on_the_wire(self):
        error = InvalidConfig.of([("/b", "`b` is bad"), (None, "nothing to do"), ("/c/0", "`c[0]` is worse")])
        self.assertEqual(error.message, "`b` is bad; nothing to do; `c[0]` is worse")
        self.assertEqual(error.wire(), "nothing to do; `#/b`: `b` is bad; `#/c/0`: `c[0]` is worse")
        self.assertEqual(error, InvalidConfig.of([("/b", "`b` is bad"), (None, "nothing to do"), ("/c/0", "`c[0]` is worse")]))
        self.assertNotEqual(error, InvalidConfig(error.message))

    def test_an_action_is_a_change_unless_it_says_otherwise(self):
        self.assertEqual(Action("x").effect, Effect.CHANGE)
        self.assertEqual(Action.check("x").effect, Effect.CHECK)
        self.assertEqual(Action.in_place("x", "d"), Action("x", "d", Effect.IN_PLACE))
        with self.assertRaises(TypeError):
            Action("x", None, "in-place")

    def test_export_outside_a_component_is_the_calls(self):
        self.assertEqual(export(Greet)().plan('{"name": "x"}'), [Action("greet x")])


if __name__ == "__main__":
    unittest.main()
