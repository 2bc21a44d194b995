#!/usr/bin/env python3
"""Tests of setup_envs.py's readiness check (issue 15, item 22), against the real snapshots and
the envs of the benchmark's cache where they exist (each test says when it is skipped):

    python3 -m unittest bench/selection/test_setup_envs.py

An env for pytest 5.x failed setup_envs.py's own check, which imported `iniconfig` (pytest 5
does not use it), and an env whose imports succeed could still run none of the repository's
tests. The check now follows the version's own dependencies and runs one of the repository's
test files before it calls an env ready.
"""

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
import setup_envs as S  # noqa: E402

PYTEST = "pytest-dev/pytest"


def pytest_snapshot() -> Path | None:
    try:
        return C.find_snapshot(Path("/work/.mirror"), PYTEST)
    except (SystemExit, Exception):
        return None


def cached_pytest_env() -> tuple[C.EnvSpec, Path, Path] | None:
    """The benchmark cache's pytest env and the checkout it was installed from, if built."""
    snap = pytest_snapshot()
    if snap is None:
        return None
    for version in C.SETUP_COMMITS[PYTEST]:
        spec = C.env_spec(PYTEST, version, snap, [])
        envdir, checkout = C.DEFAULT_CACHE / "envs" / spec.name, C.DEFAULT_CACHE / "src" / spec.name
        if (envdir / "bin" / "python").exists() and checkout.is_dir():
            return spec, envdir, checkout
    return None


class CheckModules(unittest.TestCase):
    def test_pytest_imports_follow_the_versions_own_dependencies(self):
        snap = pytest_snapshot()
        if snap is None:
            self.skipTest("no pytest snapshot under /work/.mirror")
        five = S.check_modules(C.env_spec(PYTEST, "5.4", snap, []))
        self.assertNotIn("iniconfig", five)
        self.assertEqual(set(five), {"py", "packaging", "attr", "more_itertools", "pluggy", "pytest"})
        eight = S.check_modules(C.env_spec(PYTEST, "8.0", snap, []))
        self.assertIn("iniconfig", eight)
        self.assertNotIn("setuptools", eight)
        old = S.check_modules(C.env_spec(PYTEST, "4.4", snap, []))
        self.assertIn("six", old)
        self.assertIn("atomicwrites", old)


class SmokeTest(unittest.TestCase):
    def test_an_env_that_imports_but_cannot_run_the_tests_is_not_ready(self):
        found = cached_pytest_env()
        if found is None:
            self.skipTest("no pytest env in the benchmark cache (setup_envs.py builds one)")
        spec, _, checkout = found
        with tempfile.TemporaryDirectory() as tmp:
            bare = Path(tmp) / "env"
            subprocess.run([str(C.pyenv_python(spec.python)), "-m", "venv", "--without-pip", str(bare)], check=True)
            ok, why = S.smoke_test(bare, spec, checkout, tries=1)
        self.assertFalse(ok, why)
        self.assertIn("no passing test", why)

    def test_a_built_env_runs_one_of_the_repositorys_tests(self):
        found = cached_pytest_env()
        if found is None:
            self.skipTest("no pytest env in the benchmark cache (setup_envs.py builds one)")
        spec, envdir, checkout = found
        ok, why = S.smoke_test(envdir, spec, checkout)
        self.assertTrue(ok, why)
        self.assertRegex(why, r"^testing/test_\w+\.py: \d+ passed")


if __name__ == "__main__":
    unittest.main()
