import enum
import unittest
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Union

from backout_sdk.config import ConfigError, Duration, Size, from_json, parse, to_json_value


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Retry:
    attempts: int = 1
    interval: Duration = Duration.parse("1s")


@dataclass
class Config:
    url: str
    retry: Retry = field(default_factory=Retry)
    headers: Dict[str, str] = field(default_factory=dict)
    tags: List[str] = field(default_factory=list)
    title: Optional[str] = None
    ratio: float = 1.0
    mode: Literal["fast", "safe"] = "safe"
    color: Color = Color.RED
    extra: Any = None
    max_size: Size = field(default=Size.parse("1MiB"), metadata={"key": "max-size"})
    either: Union[int, str] = 0


class ParseTest(unittest.TestCase):
    def test_defaults_and_nested_values(self):
        c = parse(Config, {"url": "u", "retry": {"attempts": 3}, "headers": {"a": "b"}, "max-size": "2KiB"})
        self.assertEqual(c.url, "u")
        self.assertEqual(c.retry, Retry(attempts=3, interval=Duration(1000)))
        self.assertEqual(c.headers, {"a": "b"})
        self.assertEqual(c.max_size, Size(2048))
        self.assertIsNone(c.title)

    def test_unknown_keys_are_errors_naming_the_path(self):
        with self.assertRaises(ConfigError) as e:
            parse(Config, {"url": "u", "retry": {"atempts": 3}})
        self.assertEqual(str(e.exception), "`retry`: unknown field `atempts`, expected one of `attempts`, `interval`")
        with self.assertRaises(ConfigError) as e:
            parse(Config, {"url": "u", "timeout": "1s"})
        self.assertIn("unknown field `timeout`", str(e.exception))

    def test_errors_carry_the_json_pointer_of_their_key(self):
        cases = [
            ({"url": "x", "retry": {"attempts": 1, "atempts": 2}}, "/retry/atempts", "`retry`: unknown field `atempts`"),
            ({"url": "x", "retry": {"attempts": "3"}}, "/retry/attempts", "`retry.attempts`: expected an integer"),
            ({"url": "x", "tags": ["a", 7]}, "/tags/1", "`tags[1]`: expected a string"),
            ({"url": "x", "headers": {"a/b": 1}}, "/headers/a~1b", '`headers."a/b"`: expected a string'),
            ({"url": "x", "retry": {"interval": "3"}}, "/retry/interval", "`retry.interval`: `3` has no unit"),
            ({}, None, "missing field `url`"),
        ]
        for value, pointer, start in cases:
            with self.assertRaises(ConfigError) as caught:
                parse(Config, value)
            self.assertEqual(caught.exception.pointer, pointer, value)
            self.assertTrue(str(caught.exception).startswith(start), str(caught.exception))

    def test_lenient_parsing_ignores_unknown_keys(self):
        self.assertEqual(parse(Retry, {"attempts": 2, "new": True}, strict=False).attempts, 2)

    def test_missing_and_mistyped_fields(self):
        with self.assertRaises(ConfigError) as e:
            parse(Config, {})
        self.assertEqual(str(e.exception), "missing field `url`")
        cases = [
            ({"url": 1}, '`url`: expected a string, got number `1`'),
            ({"url": "u", "retry": {"attempts": "3"}}, '`retry.attempts`: expected an integer, got string "3"'),
            ({"url": "u", "retry": {"attempts": True}}, "`retry.attempts`: expected an integer, got boolean `true`"),
            ({"url": "u", "tags": ["a", 2]}, "`tags[1]`: expected a string, got number `2`"),
            ({"url": "u", "headers": {"x y": 1}}, '`headers."x y"`: expected a string, got number `1`'),
            ({"url": "u", "mode": "slow"}, '`mode`: expected one of `"fast"`, `"safe"`, got string "slow"'),
            ({"url": "u", "color": "green"}, '`color`: expected one of `red`, `blue`, got string "green"'),
            ({"url": "u", "retry": {"interval": "1.5s"}}, "`retry.interval`: unknown duration unit `.5s` in `1.5s`"),
            ({"url": "u", "retry": {"interval": 5}}, "`retry.interval`: expected a duration"),
            ({"url": "u", "either": [1]}, "`either`: expected an integer or a string, got an array"),
            ({"url": "u", "retry": []}, "`retry`: expected a table, got an array"),
        ]
        for value, message in cases:
            with self.subTest(value=value):
                with self.assertRaises(ConfigError) as e:
                    parse(Config, value)
                self.assertTrue(str(e.exception).startswith(message), str(e.exception))

    def test_numbers_enums_unions_and_any(self):
        c = parse(Config, {"url": "u", "ratio": 2, "color": "blue", "either": "x", "extra": {"k": [1]}})
        self.assertEqual(c.ratio, 2.0)
        self.assertIs(c.color, Color.BLUE)
        self.assertEqual(c.either, "x")
        self.assertEqual(c.extra, {"k": [1]})

    def test_a_union_reports_the_error_of_the_option_whose_shape_fits(self):
        @dataclass
        class Row:
            label: str

        @dataclass
        class Table:
            rows: Union[Dict[str, str], List[Row]] = field(default_factory=dict)

        self.assertEqual(parse(Table, {"rows": [{"label": "a"}]}).rows, [Row("a")])
        self.assertEqual(parse(Table, {"rows": {"a": "b"}}).rows, {"a": "b"})
        with self.assertRaises(ConfigError) as e:
            parse(Table, {"rows": [{"label": "a", "value": 1}]})
        self.assertEqual(str(e.exception), "`rows[0]`: unknown field `value`, expected `label`")
        with self.assertRaises(ConfigError) as e:
            parse(Table, {"rows": 3})
        self.assertEqual(str(e.exception), "`rows`: expected a table or an array, got number `3`")

    def test_from_json_reports_bad_json(self):
        with self.assertRaises(ConfigError) as e:
            from_json(Config, "{")
        self.assertTrue(str(e.exception).startswith("not valid JSON"))

    def test_outputs_encode_to_json_values(self):
        c = parse(Config, {"url": "u", "max-size": "1KiB"})
        value = to_json_value(c)
        self.assertEqual(value["max-size"], "1KiB")
        self.assertEqual(value["retry"], {"attempts": 1, "interval": "1s"})
        self.assertEqual(value["color"], "red")
        self.assertNotIn("title", value, "None fields are left out")
        self.assertEqual(parse(Config, value), c, "what is encoded decodes to the same config")


class UnitsTest(unittest.TestCase):
    def test_durations_parse_strictly_and_show_as_people_write_them(self):
        self.assertEqual(Duration.parse("500ms").millis, 500)
        self.assertEqual(Duration.parse(" 2s").seconds, 2.0)
        self.assertEqual(Duration.parse("1h").millis, 3_600_000)
        for bad, why in [("0s", "greater than zero"), ("s", "whole number"), ("5", "no unit"), ("1d", "unknown")]:
            with self.assertRaises(ValueError) as e:
                Duration.parse(bad)
            self.assertIn(why, str(e.exception))
        self.assertEqual([str(Duration(ms)) for ms in (500, 1500, 2000, 90_000, 120_000, 5_400_000)],
                         ["500ms", "1.5s", "2s", "1m 30s", "2m", "1h 30m"])

    def test_sizes(self):
        self.assertEqual(Size.parse("512KiB").bytes, 512 << 10)
        self.assertEqual(Size.parse("1MB").bytes, 10**6)
        self.assertEqual(str(Size(1 << 20)), "1MiB")
        self.assertEqual(str(Size(100)), "100B")
        with self.assertRaises(ValueError):
            Size.parse("1024")


if __name__ == "__main__":
    unittest.main()
