"""Which pages to read again, decided by content rather than by modification times.

Sphinx re-reads a page when a dependency's modification time is newer than the
page's last read, and every page when an ``"env"`` configuration value changes.
That misses a model replaced by a file with an *older* modification time (a
``cp -p``, an archive, a checkout of an old commit) and re-reads pages that never
use the changed value. So the directives record, per page:

* every file they read (the model, the external data files of its scales) with
  its state: ``os.stat`` signature and SHA-256 of the content (hashed only when the
  signature differs from the last one known with a hash: a cold build hashes each file
  once, a page read again while its files are unchanged hashes nothing);
* the ``qdq_*`` configuration values they used;
* whether they warned (the page is read again so that the warning is repeated
  until the problem is fixed; so is a page whose graph failed while written).

:class:`QdqCollector` keeps these records per page (cleared, merged from parallel readers
and compared at ``env-get-outdated`` like Sphinx's own collectors do), so the ``qdq``
domain holds only its targets. A file whose signature changed is hashed, and only a
different hash (or a file that appeared or disappeared) makes the page outdated; an
unchanged hash is remembered with the new signature, so the file is not hashed again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sphinx.environment.collectors import EnvironmentCollector

from sphinxext_qdq.onnxio.errors import QdqModelError
from sphinxext_qdq.onnxio.files import hash_file
from sphinxext_qdq.sphinx.nodes import WRITE_PROBLEMS_FILE

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from collections.abc import Set as AbstractSet

    from docutils import nodes
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

_CHUNK = 1 << 20

#: The attribute of the build environment holding the records (pickled with it).
ENV_ATTRIBUTE = "qdq_pages"

#: The attribute of the build environment holding, per file, its latest state with a
#: content hash, whichever page read it: kept when pages are read again, so that a file
#: whose signature has not changed is not hashed again.
KNOWN_ATTRIBUTE = "qdq_file_states"

#: States learned by builds that read no page (Sphinx does not save the environment
#: then): a file whose signature changed but whose content did not, with its new
#: signature, so that the next build does not hash it again.
LEARNED_STATES_FILE = "qdq-file-states.json"


class FileState(NamedTuple):
    """A file as a page read it: ``signature`` (size, mtime, ctime, inode, device) and
    content hash; both ``None`` for a file that did not exist."""

    signature: tuple[int, int, int, int, int] | None
    content_hash: str | None


@dataclass
class PageRecord:
    """What the ``qdq`` directives of one page read, used and reported."""

    inputs: dict[str, FileState] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    warned: bool = False


def page_records(env: BuildEnvironment) -> dict[str, PageRecord]:
    """docname -> :class:`PageRecord`, kept on the environment."""
    return _env_dict(env, ENV_ATTRIBUTE)


def page_record(env: BuildEnvironment) -> PageRecord:
    """The record of the page being read."""
    return page_records(env).setdefault(env.docname, PageRecord())


def known_states(env: BuildEnvironment) -> dict[str, FileState]:
    """path -> its latest state with a content hash, kept on the environment."""
    return _env_dict(env, KNOWN_ATTRIBUTE)


def _env_dict(env: BuildEnvironment, attribute: str) -> dict:
    """The dict kept on the environment under *attribute* (made on first use)."""
    found = getattr(env, attribute, None)
    if found is None:
        found = {}
        setattr(env, attribute, found)
    return found


def note_input(env: BuildEnvironment, path: str, state: FileState) -> None:
    """Record that the page being read read *path* in *state*."""
    page_record(env).inputs[path] = state
    if state.content_hash is not None:
        known_states(env)[path] = state



def file_signature(path: str | os.PathLike[str]) -> tuple[int, int, int, int, int] | None:
    """(size, mtime, ctime, inode, device) of a file; ``None`` when it does not exist.
    Any write or replacement changes the ctime or the inode, whatever the mtime says."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return (status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino,
            status.st_dev)


def file_hash(path: str | os.PathLike[str]) -> str | None:
    """SHA-256 of a file's content; ``None`` when it cannot be read or is not a regular
    file (a FIFO or ``/dev/zero`` would never end: :func:`~sphinxext_qdq.onnxio.files.
    hash_file` checks before it reads)."""
    try:
        return hash_file(path, _CHUNK)
    except QdqModelError:
        return None


def file_state(path: str | os.PathLike[str], content_hash: str | None = None,
               signature: tuple[int, int, int, int, int] | None = None,
               known: Mapping[str, FileState] | None = None) -> FileState:
    """The state of *path* now (*signature* and *content_hash* when already known). The
    content is hashed only when neither *content_hash* nor a *known* state with the same
    signature gives the hash."""
    signature = signature if signature is not None else file_signature(path)
    if signature is None:
        return FileState(None, None)
    if content_hash is None and known is not None:
        previous = known.get(os.fspath(path))
        if previous is not None and previous.signature == signature:
            content_hash = previous.content_hash
    return FileState(signature, content_hash if content_hash is not None else file_hash(path))


class _Checker:
    """Compares recorded file states with the files, hashing each file at most once."""

    def __init__(self, known: dict[str, FileState]) -> None:
        self.known = known  # the environment's, updated with unchanged contents' signatures
        self.hashes: dict[str, str | None] = {}
        self.learned: dict[str, FileState] = {}

    def changed(self, path: str, recorded: FileState) -> bool:
        signature = file_signature(path)
        if signature == recorded.signature:
            return False
        if signature is None or recorded.signature is None:
            return True  # appeared or disappeared
        if path not in self.hashes:
            self.hashes[path] = file_state(path, signature=signature,
                                           known=self.known).content_hash
        if self.hashes[path] != recorded.content_hash:
            return True
        if self.known.get(path, recorded).signature != signature:
            self.known[path] = self.learned[path] = FileState(signature, recorded.content_hash)
        return False


class QdqCollector(EnvironmentCollector):
    """Per-page records of the ``qdq`` directives, and the pages they make outdated."""

    def clear_doc(self, app: Sphinx, env: BuildEnvironment, docname: str) -> None:
        page_records(env).pop(docname, None)

    def merge_other(self, app: Sphinx, env: BuildEnvironment, docnames: AbstractSet[str],
                    other: BuildEnvironment) -> None:
        mine = page_records(env)
        mine.update((doc, record) for doc, record in page_records(other).items()
                    if doc in docnames)
        known_states(env).update(known_states(other))

    def process_doc(self, app: Sphinx, doctree: nodes.document) -> None:
        """Nothing to collect from the doctree: the directives note as they run."""

    def get_outdated_docs(self, app: Sphinx, env: BuildEnvironment, added: set[str],
                          changed: set[str], removed: set[str]) -> list[str]:
        """Pages whose files or ``qdq_*`` values changed, or that warned."""
        learned_file = Path(app.doctreedir) / LEARNED_STATES_FILE
        learned = _read_learned(learned_file)
        known_states(env).update(learned)
        checker = _Checker(known_states(env))
        records = page_records(env)
        outdated = {doc for doc, record in records.items()
                    if record.warned
                    or any(checker.changed(path, state) for path, state in record.inputs.items())
                    or any(app.config[name] != value for name, value in record.config.items())}
        if checker.learned:
            _write_learned(learned_file, {**learned, **checker.learned})
        outdated |= set(_write_problems(Path(app.doctreedir)))
        return sorted(doc for doc in outdated
                      if doc in env.found_docs and doc not in added | changed | removed)


def _read_learned(path: Path) -> dict[str, FileState]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        return {name: FileState(tuple(signature), content_hash)
                for name, (signature, content_hash) in found.items()}
    except (OSError, ValueError, TypeError):
        return {}  # none yet, or unreadable: files are hashed as if never seen


def _write_learned(path: Path, states: dict[str, FileState]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({name: [list(state.signature or ()), state.content_hash]
                                    for name, state in states.items()}), encoding="utf-8")
    except OSError:
        pass  # an optimisation only: the next build hashes the file again


def _write_problems(doctreedir: Path) -> Iterable[str]:
    """Pages noted by :func:`sphinxext_qdq.sphinx.nodes.note_write_problem` (then forgotten)."""
    path = doctreedir / WRITE_PROBLEMS_FILE
    try:
        pages = path.read_text(encoding="utf-8").split()
        path.unlink()
    except OSError:
        return []
    return pages
