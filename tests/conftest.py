"""Shared fixtures: Sphinx's testing plugin and the test roots; the Hypothesis profiles."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

pytest_plugins = ("sphinx.testing.fixtures",)

ROOTS = Path(__file__).parent / "roots"

# Property-based tests draw the same examples on every run and write nothing into the
# repository (no ``.hypothesis/`` example database). ``HYPOTHESIS_PROFILE=explore`` draws
# fresh random examples on every run, for a local hunt (still no database: a failure
# prints the example and a ``@reproduce_failure`` blob to replay it).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(scope="session")
def rootdir() -> Path:
    return ROOTS


def pytest_sessionstart(session: pytest.Session) -> None:
    """Files written outside a test's ``tmp_path`` stay in this run's temporary folder:
    what Hypothesis still writes (its cache of the constants in the source, made while
    the tests are collected; not ``.hypothesis/``), and every ``tempfile`` folder (ONNX
    Runtime's quantizer in ``qdq_factories``, its calibration files)."""
    factory = session.config._tmp_path_factory
    set_hypothesis_home_dir(factory.mktemp("hypothesis"))
    tempfile.tempdir = str(factory.mktemp("tempfile"))
