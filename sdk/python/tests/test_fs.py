import errno
import os
import re
import shutil
import stat
import tempfile
import unittest
from unittest import mock

from backout_sdk import fs


class FsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, ".env")
        with open(self.path, "w") as f:
            f.write("A=1\n")
        os.chmod(self.path, 0o600)

    def tearDown(self):
        self.dir.cleanup()

    def test_digests(self):
        self.assertEqual(fs.sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        self.assertEqual(fs.sha256_file(self.path), fs.sha256_hex("A=1\n"))

    def test_safety_copy_keeps_contents_and_mode_and_never_overwrites(self):
        first = fs.safety_copy(self.path)
        second = fs.safety_copy(self.path)
        self.assertRegex(os.path.basename(first), r"^\.env\.backout-\d{8}T\d{6}Z\.bak$")
        self.assertNotEqual(first, second)
        for copy in (first, second):
            with open(copy) as f:
                self.assertEqual(f.read(), "A=1\n")
            self.assertEqual(stat.S_IMODE(os.stat(copy).st_mode), 0o600)

    def test_copy_file_rewrites_the_target_with_the_source_bytes(self):
        source = os.path.join(self.dir.name, "backup.db")
        target = os.path.join(self.dir.name, "staged.db")
        with open(source, "wb") as f:
            f.write(b"backup" * 50_000)
        with open(target, "wb") as f:
            f.write(b"a longer earlier content" * 20_000)
        self.assertEqual(fs.copy_file(source, target), 300_000)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"backup" * 50_000)
        self.assertEqual(fs.sha256_file(target), fs.sha256_hex(b"backup" * 50_000))
        with self.assertRaises(FileNotFoundError):
            fs.copy_file(os.path.join(self.dir.name, "missing"), target)

    def test_safety_copy_into_another_directory(self):
        other = os.path.join(self.dir.name, "backups")
        os.mkdir(other)
        copy = fs.safety_copy(self.path, other)
        self.assertEqual(os.path.dirname(copy), other)

    def test_replace_atomically_keeps_the_mode_and_leaves_no_temp_file(self):
        fs.replace_atomically(self.path, "A=2\n")
        with open(self.path) as f:
            self.assertEqual(f.read(), "A=2\n")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertEqual(os.listdir(self.dir.name), [".env"])

    def test_replace_atomically_creates_a_missing_file(self):
        new = os.path.join(self.dir.name, "new.txt")
        fs.replace_atomically(new, b"x")
        with open(new, "rb") as f:
            self.assertEqual(f.read(), b"x")

    def test_a_failed_write_leaves_the_target_and_no_temp_file(self):
        def boom(f):
            f.write(b"half")
            raise OSError("disk full")

        with self.assertRaises(OSError):
            fs.replace_atomically_with(self.path, boom)
        with open(self.path) as f:
            self.assertEqual(f.read(), "A=1\n")
        self.assertEqual(os.listdir(self.dir.name), [".env"])

    def test_safety_copy_goes_through_a_declared_temporary_and_leaves_only_the_bak(self):
        fs.clear_declared_temporary_files()
        copy = fs.safety_copy(self.path)
        declared = fs.declared_temporary_files()
        self.assertEqual(len(declared), 1)
        self.assertRegex(os.path.basename(declared[0]), r"^\.\.env\.backout-tmp-[0-9a-f]+$")
        self.assertEqual(sorted(os.listdir(self.dir.name)), [".env", os.path.basename(copy)])

    def test_safety_copy_falls_back_to_a_checked_rename_where_links_are_unsupported(self):
        def no_links(source, target, **_):
            raise OSError(errno.ENOTSUP, "operation not supported")

        real_link, os.link = os.link, no_links
        try:
            copy = fs.safety_copy(self.path)
        finally:
            os.link = real_link
        with open(copy) as f:
            self.assertEqual(f.read(), "A=1\n")
        self.assertEqual(sorted(os.listdir(self.dir.name)), [".env", os.path.basename(copy)])

    def test_rename_no_clobber_refuses_an_existing_target_and_keeps_both_files(self):
        source = os.path.join(self.dir.name, ".temp")
        target = os.path.join(self.dir.name, "final")
        for path, text in ((source, "new"), (target, "old")):
            with open(path, "w") as f:
                f.write(text)
        with self.assertRaises(FileExistsError):
            fs.rename_no_clobber(source, target)
        self.assertEqual(sorted(os.listdir(self.dir.name)), [".env", ".temp", "final"])
        os.remove(target)
        fs.rename_no_clobber(source, target)
        self.assertEqual(sorted(os.listdir(self.dir.name)), [".env", "final"])
        with open(target) as f:
            self.assertEqual(f.read(), "new")

    def test_replace_atomically_declares_its_temporary(self):
        fs.clear_declared_temporary_files()
        fs.replace_atomically(self.path, "A=2\n")
        declared = fs.declared_temporary_files()
        self.assertEqual(len(declared), 1)
        self.assertEqual(os.path.dirname(declared[0]), self.dir.name)
        self.assertFalse(os.path.lexists(declared[0]))

    def test_a_safety_copy_of_a_0600_file_is_0600_before_its_first_byte_is_written(self):
        seen = []
        real_copy = shutil.copyfileobj

        def copy_and_look(source, target, *args):
            seen.append((os.fstat(target.fileno()).st_size, oct(stat.S_IMODE(os.fstat(target.fileno()).st_mode))))
            return real_copy(source, target, *args)

        with mock.patch("backout_sdk.fs.shutil.copyfileobj", copy_and_look):
            copy = fs.safety_copy(self.path)
        self.assertEqual(seen, [(0, "0o600")], "(bytes in the temporary file, its mode) when the copy starts")
        self.assertEqual(stat.S_IMODE(os.stat(copy).st_mode), 0o600)

    def test_an_atomic_replace_of_a_0600_file_writes_into_a_file_that_is_already_0600(self):
        seen = []

        def write(f):
            seen.append((os.fstat(f.fileno()).st_size, oct(stat.S_IMODE(os.fstat(f.fileno()).st_mode))))
            f.write(b"A=2\n")

        fs.replace_atomically_with(self.path, write)
        self.assertEqual(seen, [(0, "0o600")], "(bytes in the temporary file, its mode) when writing starts")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_a_temporary_that_cannot_get_the_permissions_gets_no_byte_and_is_removed(self):
        def refuse(source, target):
            raise OSError(f"cannot give `{target}` the permissions of `{source}`: only root may give a file away")

        written = []
        with mock.patch("backout_sdk.fs.copy_permissions", refuse):
            with self.assertRaisesRegex(OSError, "only root may give a file away"):
                fs.replace_atomically_with(self.path, written.append)
            with self.assertRaisesRegex(OSError, "only root may give a file away"):
                fs.safety_copy(self.path)
        self.assertEqual(written, [], "write was never called")
        self.assertEqual(os.listdir(self.dir.name), [".env"])

    def test_an_atomic_replace_creating_a_new_file_gives_it_the_default_mode_from_the_start(self):
        probe = os.path.join(self.dir.name, "probe")
        open(probe, "xb").close()
        default = stat.S_IMODE(os.stat(probe).st_mode)
        os.remove(probe)
        new = os.path.join(self.dir.name, "new.txt")
        seen = []

        def write(f):
            seen.append(stat.S_IMODE(os.fstat(f.fileno()).st_mode))
            f.write(b"x")

        fs.replace_atomically_with(new, write)
        self.assertEqual(seen, [default], "nothing to take permissions from: the default mode while written")
        self.assertEqual(stat.S_IMODE(os.stat(new).st_mode), default, "and after")

    def test_utc_stamp(self):
        self.assertEqual(fs.utc_stamp(0), "19700101T000000Z")
        self.assertEqual(fs.utc_stamp(1_795_432_721), "20261123T111841Z")
        self.assertEqual(fs.utc_stamp(951_782_400), "20000229T000000Z")
        self.assertTrue(re.fullmatch(r"\d{8}T\d{6}Z", fs.utc_stamp()))


if __name__ == "__main__":
    unittest.main()
