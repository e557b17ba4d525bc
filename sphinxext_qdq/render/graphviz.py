"""Starting graphviz: the one place ``dot`` is run, for the command line and the builders.

Outputs are written to temporary files renamed into place only when every one of them
exists (and passed the caller's check), so two pages or two processes drawing the same
graph never read a half-written file; a failure, a missing program or a time-out is a
:class:`DotRunError` with a one-line message, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

#: Seconds ``dot`` may take for one graph before it is stopped.
DEFAULT_DOT_TIMEOUT = 120.0


class DotRunError(Exception):
    """``dot`` could not be run, failed or took too long. ``reason`` is ``"missing"``
    (no such program), ``"unusable"`` (it cannot be started), ``"failed"`` or
    ``"timeout"``; the message is one line, for callers to add their own advice to."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def run_dot_program(args: Sequence[str], dot_text: str, *, timeout: float | None,
                    cwd: str | None = None) -> None:
    """Run graphviz (``args[0]``, with ``args[1:]`` naming its outputs) on *dot_text*:
    the one place both the command line and the Sphinx builders start ``dot``.
    *timeout* ``None`` or ``<= 0`` means no limit."""
    program = args[0]
    try:
        result = subprocess.run(list(args), input=dot_text.encode("utf-8"), capture_output=True,
                                cwd=cwd, timeout=timeout if timeout and timeout > 0 else None,
                                check=False)
    except subprocess.TimeoutExpired:
        raise DotRunError("timeout", f"{program} took longer than {timeout:g} s and was "
                                     "stopped") from None
    except FileNotFoundError:
        raise DotRunError("missing", f"graphviz {program!r} not found") from None
    except PermissionError:
        raise DotRunError("unusable", f"cannot run {program!r}: permission denied") from None
    except OSError as error:
        raise DotRunError("unusable", f"cannot run {program!r}: "
                                      f"{error.strerror or error}") from None
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DotRunError("failed", f"{program} failed with exit status {result.returncode}"
                          + (f": {' '.join(lines[0].split())[:300]}" if lines else ""))


def draw_files(dot_text: str, outputs: Sequence[tuple[str, Path]], *, dot: str = "dot",
               dot_args: Sequence[str] = (), timeout: float | None = DEFAULT_DOT_TIMEOUT,
               cwd: str | None = None,
               check: Callable[[dict[Path, Path]], None] | None = None) -> None:
    """Run *dot* once for every ``(format, path)`` of *outputs* and move the files into
    place together (the last one first, so an image map is there before its image).

    *check* gets ``{final path: temporary path}`` before anything is renamed and may raise
    :class:`DotRunError` (``reason`` ``"invalid"``) to refuse what dot wrote."""
    token = f".{os.getpid()}-{threading.get_ident()}.tmp"
    temporary = {final: final.with_name(final.name + token) for _, final in outputs}
    args = [dot, *dot_args]
    for output_format, final in outputs:
        args += [f"-T{output_format}", f"-o{temporary[final]}"]
    try:
        run_dot_program(args, dot_text, timeout=timeout, cwd=cwd)
        for output_format, final in outputs:
            path = temporary[final]
            if not path.is_file() or path.stat().st_size == 0:
                raise DotRunError("failed", f"{dot} wrote an empty {output_format} file")
        if check is not None:
            check(temporary)
        for _, final in reversed(outputs):
            os.replace(temporary[final], final)
    finally:
        for path in temporary.values():
            path.unlink(missing_ok=True)
