"""The short, deterministic part of the fuzz run (``make fuzz`` is the long one).

16 inputs (seeds 0-15 of :mod:`fuzz.mutators`) through every directive and option the
harness rotates (:mod:`fuzz.harness`), in three batched Sphinx builds (html, text,
latex) and through the graph and every CLI subcommand, each batch in a fresh child
process under a memory limit with a per-input timeout, two children at a time: no
traceback, no hang, no exit status other than 0 and 2, every page written.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "fuzz"))

import harness


def test_fuzz_subset(tmp_path: Path) -> None:
    tally = harness.run(16, first_seed=0, sphinx_batch=6, timeout=60, workdir=tmp_path, jobs=2)
    assert tally.failures == []
    assert tally.inputs == 16 and tally.seeds == [0, 15] and tally.jobs == 2
    assert tally.runs == {"sphinx-html": 6, "sphinx-text": 6, "sphinx-latex": 4,
                          "cli-graph": 16, "cli-vectors": 16, "cli-error": 16,
                          "cli-histogram": 16}
    assert set(tally.exits) <= {"0", "2"} and sum(tally.exits.values()) == 64
    assert tally.peak_rss_kib < 1 << 20  # KiB: 1 GiB


def test_time_limit_starts_no_batch() -> None:
    """Past ``stop_at`` no Sphinx batch starts, nor the CLI batches of its seeds; the CLI
    batches of a Sphinx batch already started still do."""
    pending = harness.batches(4, 0, sphinx_batch=2, cli_batch=1)
    assert harness.next_batch(pending, None) == ("html", [0, 1])
    past = time.time() - 1
    assert harness.next_batch(pending, past) == ("cli", [0])
    assert harness.next_batch(pending, past) == ("cli", [1])
    assert harness.next_batch(pending, past) is None  # ("text", [2, 3]) never starts
    assert harness.next_batch(pending, None) is None  # nor ("cli", [2])
