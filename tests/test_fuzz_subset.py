"""The short, deterministic part of the fuzz run (``make fuzz`` is the long one).

24 inputs (seeds 0-23 of :mod:`fuzz.mutators`) through every directive, in three
batched Sphinx builds (html, text, latex) and through both CLI subcommands, each batch
in a child process under a memory limit with a per-input timeout: no traceback, no
hang, no exit status other than 0 and 2, every page written.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "fuzz"))

import harness


def test_fuzz_subset(tmp_path: Path) -> None:
    tally = harness.run(24, first_seed=0, sphinx_batch=8, timeout=60, workdir=tmp_path)
    assert tally.failures == []
    assert tally.inputs == 24
    assert tally.runs == {"sphinx-html": 8, "sphinx-text": 8, "sphinx-latex": 8,
                          "cli-graph": 24, "cli-vectors": 24}
    assert set(tally.exits) <= {"0", "2"} and sum(tally.exits.values()) == 48
    assert tally.peak_rss_kib < 1 << 20  # KiB: 1 GiB
