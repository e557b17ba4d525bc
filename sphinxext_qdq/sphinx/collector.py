"""Which pages to read again, decided by content rather than by modification times.

Sphinx re-reads a page when a dependency's modification time is newer than the
page's last read, and every page when an ``"env"`` configuration value changes.
That misses a model replaced by a file with an *older* modification time (a
``cp -p``, an archive, a checkout of an old commit) and re-reads pages that never
use the changed value. So the directives record, per page:

* every file they read (the model, the external data files of its scales) with
  its state: ``os.stat`` signature and SHA-256 of the content;
* the ``qdq_*`` configuration values they used;
* whether they warned (the page is read again so that the warning is repeated
  until the problem is fixed; so is a page whose graph failed while written).

:class:`QdqCollector` keeps these records per page (cleared, merged from parallel readers
and compared at ``env-get-outdated`` like Sphinx's own collectors do), so the ``qdq``
domain holds only its targets. A file whose signature changed is hashed, and only a
different hash (or a file that appeared or disappeared) makes the page outdated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sphinx.environment.collectors import EnvironmentCollector

from sphinxext_qdq.onnxio.files import hash_file
from sphinxext_qdq.onnxio.proto import QdqModelError
from sphinxext_qdq.sphinx.nodes import WRITE_PROBLEMS_FILE

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Set as AbstractSet

    from docutils import nodes
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

_CHUNK = 1 << 20

#: The attribute of the build environment holding the records (pickled with it).
ENV_ATTRIBUTE = "qdq_pages"


class FileState(NamedTuple):
    """A file as a page read it: ``signature`` (size, mtime, ctime, inode) and content
    hash; both ``None`` for a file that did not exist."""

    signature: tuple[int, int, int, int] | None
    content_hash: str | None


@dataclass
class PageRecord:
    """What the ``qdq`` directives of one page read, used and reported."""

    inputs: dict[str, FileState] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    warned: bool = False


def page_records(env: BuildEnvironment) -> dict[str, PageRecord]:
    """docname -> :class:`PageRecord`, kept on the environment."""
    records = getattr(env, ENV_ATTRIBUTE, None)
    if records is None:
        records = {}
        setattr(env, ENV_ATTRIBUTE, records)
    return records


def page_record(env: BuildEnvironment) -> PageRecord:
    """The record of the page being read."""
    return page_records(env).setdefault(env.docname, PageRecord())


def file_signature(path: str | os.PathLike[str]) -> tuple[int, int, int, int] | None:
    """(size, mtime, ctime, inode) of a file; ``None`` when it does not exist. Any
    write or replacement changes the ctime or the inode, whatever the mtime says."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return (status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)


def file_hash(path: str | os.PathLike[str]) -> str | None:
    """SHA-256 of a file's content; ``None`` when it cannot be read or is not a regular
    file (a FIFO or ``/dev/zero`` would never end: :func:`~sphinxext_qdq.onnxio.files.
    hash_file` checks before it reads)."""
    try:
        return hash_file(path, _CHUNK)
    except QdqModelError:
        return None


def file_state(path: str | os.PathLike[str], content_hash: str | None = None,
               signature: tuple[int, int, int, int] | None = None) -> FileState:
    """The state of *path* now (*signature* and *content_hash* when already known)."""
    signature = signature if signature is not None else file_signature(path)
    if signature is None:
        return FileState(None, None)
    return FileState(signature, content_hash if content_hash is not None else file_hash(path))


class _Checker:
    """Compares recorded file states with the files, hashing each file at most once."""

    def __init__(self) -> None:
        self.hashes: dict[str, str | None] = {}

    def changed(self, path: str, recorded: FileState) -> bool:
        signature = file_signature(path)
        if signature == recorded.signature:
            return False
        if signature is None or recorded.signature is None:
            return True  # appeared or disappeared
        if path not in self.hashes:
            self.hashes[path] = file_hash(path)
        return self.hashes[path] != recorded.content_hash


class QdqCollector(EnvironmentCollector):
    """Per-page records of the ``qdq`` directives, and the pages they make outdated."""

    def clear_doc(self, app: Sphinx, env: BuildEnvironment, docname: str) -> None:
        page_records(env).pop(docname, None)

    def merge_other(self, app: Sphinx, env: BuildEnvironment, docnames: AbstractSet[str],
                    other: BuildEnvironment) -> None:
        mine = page_records(env)
        mine.update((doc, record) for doc, record in page_records(other).items()
                    if doc in docnames)

    def process_doc(self, app: Sphinx, doctree: nodes.document) -> None:
        """Nothing to collect from the doctree: the directives note as they run."""

    def get_outdated_docs(self, app: Sphinx, env: BuildEnvironment, added: set[str],
                          changed: set[str], removed: set[str]) -> list[str]:
        """Pages whose files or ``qdq_*`` values changed, or that warned."""
        checker = _Checker()
        records = page_records(env)
        outdated = {doc for doc, record in records.items()
                    if record.warned
                    or any(checker.changed(path, state) for path, state in record.inputs.items())
                    or any(app.config[name] != value for name, value in record.config.items())}
        outdated |= set(_write_problems(Path(app.doctreedir)))
        return sorted(doc for doc in outdated
                      if doc in env.found_docs and doc not in added | changed | removed)


def _write_problems(doctreedir: Path) -> Iterable[str]:
    """Pages noted by :func:`sphinxext_qdq.sphinx.nodes.note_write_problem` (then forgotten)."""
    path = doctreedir / WRITE_PROBLEMS_FILE
    try:
        pages = path.read_text(encoding="utf-8").split()
        path.unlink()
    except OSError:
        return []
    return pages
