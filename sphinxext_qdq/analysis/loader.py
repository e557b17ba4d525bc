"""Safe, cached loading of ONNX models: the one entry point for every caller.

:func:`load_qdq_model` refuses anything that is not a readable ONNX file with a
:class:`QdqModelError` naming the file and the reason, never a protobuf
traceback. It parses the bytes itself (external data is never loaded with the
model), caps the file size, and caches the analysis by resolved path and file
status (size, times, inode, device) and the limits that change the analysis
(``max_param_values``), so a process parses a model once however many directives ask
for it. The content is hashed only when the status cannot
tell whether the file changed (see :func:`load_qdq_model`).

Reading and parsing are :mod:`sphinxext_qdq.onnxio`'s job (checked paths, the lean parse
of large files, external data only from inside the model's folder); this module owns the
cache and hands the parsed model to :func:`~sphinxext_qdq.analysis.patterns.analyze`.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sphinxext_qdq.analysis.patterns import analyze
from sphinxext_qdq.onnxio import proto as _proto
from sphinxext_qdq.onnxio.errors import QdqModelError
from sphinxext_qdq.onnxio.files import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PARAM_VALUES,
    checked_stat,
    content_hash_of,
    read_bytes,
    resolve_model_file,
)
from sphinxext_qdq.onnxio.proto import parse_lean

if TYPE_CHECKING:
    import onnx

    from sphinxext_qdq.analysis.records import QdqModel

#: Most analyses kept in the cache (least recently used ones are dropped first).
CACHE_SIZE = 64

#: Files at least this large are hashed in a thread while they are parsed and analysed.
_THREADED_HASH_BYTES = 4 * 1024 * 1024

#: A file last changed at least this long before it was read is trusted unchanged as long
#: as its status is (coarse file-system clocks cannot hide a later change of the same size).
_SETTLED_NS = 2_000_000_000


class _Status(NamedTuple):
    """What ``stat`` says of a file; any write changes ``ctime``."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int


class _Entry(NamedTuple):
    """One cached analysis: the file's status when it was read, the SHA-256 of what was
    read (``""`` when it was not needed), whether the status alone identifies that content
    (the file had settled before it was read), and the external data files' status."""

    status: _Status
    content_hash: str
    trusted: bool
    model: QdqModel
    data_status: tuple[tuple[str, _Status | None], ...]


#: (resolved path, max_param_values) -> the latest analysis
_cache: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
_lock = threading.Lock()
_hit_count = 0
_hash_count = 0


# -- public API ---------------------------------------------------------------
def load_qdq_model(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                   max_param_values: int = DEFAULT_MAX_PARAM_VALUES) -> QdqModel:
    """Parse and analyse the ONNX model at *path*, or return the cached analysis.

    *max_bytes*: a larger file is refused; *max_param_values*: a scale or zero point with
    more values is reported (``qdq.value``), not read (part of the cache key).

    Freshness comes from the file's status (size, mtime, ctime, inode, device): a cached
    analysis whose file has the same status, and had settled when it was read, is returned
    after one ``stat``. The content (SHA-256) is hashed only when the status cannot decide:
    the file changed within :data:`_SETTLED_NS` of being read (a coarse clock could hide a
    rewrite), or its status changed since a hashed read (the content may still be the same,
    and then the analysis is kept)."""
    resolved = resolve_model_file(path)
    status = _status(checked_stat(resolved, max_bytes))
    where = (str(resolved), max_param_values)
    entry = _entry(where)
    if entry is not None and entry.trusted and entry.status == status:
        return _hit(where, entry)
    read_at = time.time_ns()
    data = read_bytes(resolved, max_bytes)  # checked again once open, never above the limit
    trusted = max(status.mtime_ns, status.ctime_ns) <= read_at - _SETTLED_NS
    if entry is not None and entry.content_hash and entry.status.size == len(data):
        content_hash = _hash(data)  # the status changed or was not trusted: compare content
        if content_hash == entry.content_hash:
            return _hit(where, entry._replace(status=status, trusted=trusted))
        model = _analysed(parse_lean(data, resolved), resolved, content_hash, max_param_values)
    elif trusted:
        model = _analysed(parse_lean(data, resolved), resolved, "", max_param_values)
    else:  # changed a moment ago: hash (releases the GIL) while parsing and analysing
        model = _analysed_while_hashing(data, resolved, max_param_values)
    model = dataclasses.replace(model, file_status=tuple(status))
    _remember(where, _Entry(status, model.content_hash, trusted, model,
                            _data_files_status(model)))
    return model


def _status(status: os.stat_result) -> _Status:
    return _Status(status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino,
                   status.st_dev)


def _entry(where: tuple[str, int]) -> _Entry | None:
    """The cached analysis of *where*, unless an external data file it read has changed."""
    with _lock:
        entry = _cache.get(where)
    if entry is not None and entry.data_status != _data_files_status(entry.model):
        with _lock:
            _cache.pop(where, None)
        return None
    return entry


def _hit(where: tuple[str, int], entry: _Entry) -> QdqModel:
    global _hit_count
    with _lock:
        _cache[where] = entry
        _cache.move_to_end(where)
        _hit_count += 1
    return entry.model


def _hash(data: bytes) -> str:
    global _hash_count
    with _lock:
        _hash_count += 1
    return content_hash_of(data)


def _data_files_status(model: QdqModel) -> tuple[tuple[str, _Status | None], ...]:
    """What ``stat`` says of the external data files *model* was analysed with."""
    found = []
    for name in model.data_files:
        try:
            found.append((name, _status(os.stat(name))))
        except OSError:
            found.append((name, None))
    return tuple(found)


def _analysed(proto: onnx.ModelProto, path: Path, content_hash: str,
              max_param_values: int = DEFAULT_MAX_PARAM_VALUES) -> QdqModel:
    """Analyse a parsed model; a failure of the analysis itself never escapes raw.

    The cyclic garbage collector is paused meanwhile: the analysis allocates tens of
    thousands of objects that all live on, and each collection they trigger walks them
    (and, in a documentation build, Sphinx's large heap) again: 12 % of the analysis of
    a 250-node model, 30 % of a 2,000-node one. It is switched back on afterwards by the
    caller that switched it off."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return analyze(proto, path=str(path), model_dir=path.parent, content_hash=content_hash,
                       max_param_values=max_param_values)
    except QdqModelError:
        raise
    except Exception as error:  # a model must never crash a documentation build
        raise QdqModelError(path, f"cannot be analysed ({type(error).__name__}: {error})"
                            ) from error
    finally:
        if collecting:
            gc.enable()


def parse_count() -> int:
    """How many model files this process has parsed (cache misses)."""
    return _proto.parse_count()


def hash_count() -> int:
    """How many times this process has hashed a model file's content."""
    return _hash_count


def stats() -> dict[str, int]:
    """Cache statistics: parses, content hashes, cache hits and cached entries."""
    return {"parses": _proto.parse_count(), "hashes": _hash_count, "hits": _hit_count,
            "entries": len(_cache)}


def clear_cache() -> None:
    """Forget every cached analysis (the parse counter keeps counting)."""
    with _lock:
        _cache.clear()


def _analysed_while_hashing(data: bytes, path: Path, max_param_values: int) -> QdqModel:
    """Parse and analyse *data* while a thread hashes it (sha256 runs without the GIL)."""
    if len(data) < _THREADED_HASH_BYTES:
        return _analysed(parse_lean(data, path), path, _hash(data), max_param_values)
    digest: list[str] = []
    worker = threading.Thread(target=lambda: digest.append(_hash(data)), daemon=True)
    worker.start()
    try:
        model = _analysed(parse_lean(data, path), path, "", max_param_values)
    finally:
        worker.join()
    return dataclasses.replace(model, content_hash=digest[0])


def _remember(where: tuple[str, int], entry: _Entry) -> None:
    with _lock:
        _cache[where] = entry  # replaces an older version of the same file
        _cache.move_to_end(where)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
