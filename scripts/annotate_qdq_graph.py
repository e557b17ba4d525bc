"""Draw the annotated ResNet8 QDQ architecture picture for the documentation.

``.venv/bin/python scripts/annotate_qdq_graph.py --model models/resnet8_int8.onnx
--output-dir docs/images/`` writes ``resnet8_qdq_architecture.png`` and ``.svg``
through the ``qdq-graph`` command line (:mod:`sphinxext_qdq.cli`), so the picture
is the one ``qdq-graph`` and the ``qdq-graph`` directive draw.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sphinxext_qdq import cli

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
BASE_NAME = "resnet8_qdq_architecture"


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPOSITORY_ROOT / "models/resnet8_int8.onnx")
    parser.add_argument("--output-dir", type=Path, default=REPOSITORY_ROOT / "docs/images")
    parser.add_argument("--mode", choices=("compact", "full"), default="compact")
    parser.add_argument("--rankdir", choices=("TB", "LR"), default="TB")
    parser.add_argument("--legend", action=argparse.BooleanOptionalAction, default=True,
                        help="draw the legend (default: on)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    command = [str(args.model), "--output-dir", str(args.output_dir), "--name", BASE_NAME,
               "--format", "png,svg", "--mode", args.mode, "--rankdir", args.rankdir]
    if args.legend:
        command.append("--legend")
    return cli.main(command)


if __name__ == "__main__":
    raise SystemExit(main())
