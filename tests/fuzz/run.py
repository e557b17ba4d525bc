"""``make fuzz``: the long fuzz run; its figures go to ``tests/fuzz/RESULTS.md``.

    python tests/fuzz/run.py [--inputs 20000] [--seed 0] [--jobs 2] [--minutes M]
                             [--report PATH] [--notes PATH]

Every input goes through Sphinx (html, text and latex builders in turn, batches of
pages built in-process) and every CLI subcommand (see :mod:`harness`), ``--jobs``
batch children at a time. The report
gives inputs, runs per entry point, tracebacks, hangs, exits other than 0/2, pages not
written and the largest peak RSS of one child; failures are listed with their seeds
(re-run one with ``--seed N --inputs 1``); the hand-written ``--notes`` file (default
``tests/fuzz/NOTES.md``: the failures found and what became of them) is carried at the
end. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import harness

GIB = 1 << 30


def report(tally: harness.Tally, args: argparse.Namespace, finished: bool) -> str:
    rate = tally.inputs / tally.seconds * 60 if tally.seconds else 0.0
    seeds = "none" if not tally.seeds else f"{tally.seeds[0]} … {tally.seeds[1]}"
    if tally.seeds and tally.seeds[1] - tally.seeds[0] + 1 != tally.inputs:
        seeds += f" ({tally.inputs} of them done: batches finish out of order)"
    peak_mib = tally.peak_rss_kib / 1024
    lines = [
        "# Fuzz results",
        "",
        ("Written by `make fuzz` (`tests/fuzz/run.py`); the inputs are decided by their seeds "
        "(`tests/fuzz/mutators.py`), so a run can be repeated exactly."),
        "",
        (f"- Date (UTC): {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}; machine: "
        f"{platform.machine()}, Python {platform.python_version()}; run under `nice -n 15` "
        "on a shared 2-core machine"),
        f"- Seeds {seeds}" + ("" if finished else f" (still running, or stopped by the time "
                                                  f"limit before {args.inputs} inputs)"),
        f"- Batch children at a time (`--jobs`): {tally.jobs}",
        f"- Inputs (models): **{tally.inputs}**; entry-point runs: **{tally.entry_runs}**",
        f"- Rate: {rate:.1f} inputs per minute ({tally.seconds / 60:.1f} minutes)",
        f"- Tracebacks: **{tally.count('traceback')}**",
        f"- Hangs (per-input timeout {args.timeout:g} s): **{tally.count('hang')}**",
        f"- CLI exits other than 0/2: **{tally.count('exit')}**",
        f"- Pages not written: **{tally.count('page')}**",
        (f"- Errors of the harness itself (inputs lost, not counted above): "
        f"{tally.count('harness')}"),
        (f"- Peak RSS of a child: **{peak_mib:.0f} MiB** (limit for done: 1024 MiB; address "
        f"space limit {args.memory_gib:g} GiB)"),
        f"- Warnings emitted by the builds: {tally.warnings}",
        "",
        "| Entry point | Inputs run |",
        "|---|---|",
        *(f"| {entry} | {count} |" for entry, count in sorted(tally.runs.items())),
        "",
        "| CLI exit status | Count |",
        "|---|---|",
        *(f"| {status} | {count} |" for status, count in sorted(tally.exits.items())),
        "",
    ]
    if tally.failures:
        lines += ["## Failures of this run", ""]
        for failure in tally.failures[:50]:
            detail = failure.detail.strip().replace("\n", "\n    ")
            lines += [f"- {failure.kind} in {failure.entry}, seeds {failure.seeds[:10]}", "",
                      f"    {detail[-1500:]}", ""]
    if args.notes.is_file():
        lines += ["", args.notes.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=None,
                        help="start no new batch after this many minutes")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per input")
    parser.add_argument("--sphinx-batch", type=int, default=25)
    parser.add_argument("--jobs", type=int, default=2, help="batch children at a time")
    parser.add_argument("--notes", type=Path, default=HERE / "NOTES.md",
                        help="hand-written section carried at the end of the report")
    parser.add_argument("--memory-gib", type=float, default=harness.MEMORY_LIMIT / GIB)
    parser.add_argument("--report", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    stop_at = time.time() + args.minutes * 60 if args.minutes else None

    def progress(tally: harness.Tally) -> None:
        print(f"{tally.inputs} inputs, {tally.entry_runs} runs, {tally.seconds:.0f} s, "
              f"tracebacks {tally.count('traceback')}, hangs {tally.count('hang')}, "
              f"bad exits {tally.count('exit')}, peak RSS {tally.peak_rss_kib // 1024} MiB",
              flush=True)
        args.report.write_text(report(tally, args, False))

    tally = harness.run(args.inputs, first_seed=args.seed, sphinx_batch=args.sphinx_batch,
                        timeout=args.timeout, memory=int(args.memory_gib * GIB), jobs=args.jobs,
                        progress=progress, stop_at=stop_at)
    finished = tally.inputs >= args.inputs
    args.report.write_text(report(tally, args, finished))
    if args.json:
        args.json.write_text(json.dumps({"inputs": tally.inputs, "jobs": tally.jobs, "runs": tally.runs,
                                         "tracebacks": tally.count("traceback"),
                                         "hangs": tally.count("hang"),
                                         "bad_exits": tally.count("exit"),
                                         "peak_rss_kib": tally.peak_rss_kib}, indent=1))
    print(f"report: {args.report}")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
