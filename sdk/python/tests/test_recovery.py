import unittest
from dataclasses import dataclass

from backout_sdk import Failed, checkpoint, recovery


@dataclass
class Outputs:
    file: str
    safety_copy: str


class CheckpointTest(unittest.TestCase):
    def setUp(self):
        recovery.clear()

    def tearDown(self):
        recovery.clear()

    def test_checkpoints_are_recorded_in_order_as_json(self):
        checkpoint(Outputs("/app/.env", "/app/.env.backout-20261123T111841Z.bak"))
        checkpoint({"step": 2})
        self.assertEqual(
            recovery.recorded(),
            [{"file": "/app/.env", "safety_copy": "/app/.env.backout-20261123T111841Z.bak"}, {"step": 2}],
        )

    def test_outputs_that_are_not_an_object_are_refused_and_not_recorded(self):
        with self.assertRaises(Failed) as caught:
            checkpoint([1, 2])
        self.assertEqual(
            caught.exception.message,
            "cannot record a checkpoint before changing anything: the outputs must be a JSON object, not list; "
            "nothing was changed",
        )
        with self.assertRaises(Failed) as caught:
            checkpoint({"big": "x" * recovery.MAX_BYTES})
        self.assertIn("more than the 1048576 allowed", caught.exception.message)
        self.assertEqual(recovery.recorded(), [])

    def test_a_hook_sees_each_checkpoint_first_and_can_refuse_it(self):
        seen = []

        def hook(outputs):
            seen.append(outputs)
            return "the journal's disk is full" if outputs.get("n") == 2 else None

        recovery.set_hook(hook)
        checkpoint({"n": 1})
        with self.assertRaises(Failed) as caught:
            checkpoint({"n": 2})
        self.assertTrue(caught.exception.message.endswith(": the journal's disk is full; nothing was changed"))
        self.assertEqual(seen, [{"n": 1}, {"n": 2}])
        self.assertEqual(recovery.recorded(), [{"n": 1}])


if __name__ == "__main__":
    unittest.main()
