"""backout_sdk.text: counted nouns, by the host's rules."""

import unittest

from backout_sdk.text import count, plural


class CountTest(unittest.TestCase):
    def test_counted_nouns_are_plural_unless_one(self):
        self.assertEqual(count(1, "key"), "1 key")
        self.assertEqual(count(0, "key"), "0 keys")
        self.assertEqual(count(2, "attempt"), "2 attempts")
        self.assertEqual(count(2, "entry"), "2 entries")
        self.assertEqual(count(3, "match"), "3 matches")
        self.assertEqual(count(2, "box"), "2 boxes")

    def test_plural_follows_the_regular_rules(self):
        self.assertEqual(plural("day"), "days")
        self.assertEqual(plural("copy"), "copies")
        self.assertEqual(plural("y"), "ys")


if __name__ == "__main__":
    unittest.main()
