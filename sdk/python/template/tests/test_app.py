"""Native unit tests of the step's logic on real temp files: plain `python3`,
no component (the SDK falls back to the standard library outside one).

    PYTHONPATH=<backout>/sdk/python python3 -m unittest discover -s tests
"""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import app  # noqa: E402
from backout_sdk import Calls, InvalidConfig, Precondition  # noqa: E402


class WriteFileTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.file = os.path.join(self.dir.name, "greeting.txt")
        with open(self.file, "w") as f:
            f.write("hello\n")
        self.config = json.dumps({"file": self.file, "contents": "bonjour\n"})
        self.calls = Calls(app.WriteFile)

    def read(self, path):
        with open(path) as f:
            return f.read()

    def test_describe(self):
        info = self.calls.describe()
        self.assertEqual((info.name, info.version), ("{{name}}", app.VERSION))

    def test_plan_changes_nothing(self):
        (action,) = self.calls.plan(self.config)
        self.assertEqual(action.summary, f"replace {self.file}")
        self.assertEqual(self.read(self.file), "hello\n")

    def test_run_verify_undo(self):
        summary, outputs = self.calls.run(self.config)
        out = json.loads(outputs)
        self.assertEqual(self.read(self.file), "bonjour\n")
        self.assertEqual(self.read(out["safety_copy"]), "hello\n")
        self.calls.verify(self.config, outputs)
        self.calls.undo(self.config, outputs)
        self.assertEqual(self.read(self.file), "hello\n")

    def test_undo_refuses_when_the_file_changed_since(self):
        _, outputs = self.calls.run(self.config)
        with open(self.file, "w") as f:
            f.write("edited by hand\n")
        with self.assertRaises(Precondition):
            self.calls.undo(self.config, outputs)
        self.assertEqual(self.read(self.file), "edited by hand\n")

    def test_config_errors(self):
        with self.assertRaises(InvalidConfig) as e:
            self.calls.plan(json.dumps({"file": self.file, "contents": "x", "mode": "0600"}))
        self.assertIn("unknown field `mode`", e.exception.message)
        with self.assertRaises(Precondition):
            self.calls.plan(json.dumps({"file": self.file + ".missing", "contents": "x"}))


if __name__ == "__main__":
    unittest.main()
