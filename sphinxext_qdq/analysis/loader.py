"""Safe, cached loading of ONNX models: the one entry point for every caller.

:func:`load_qdq_model` refuses anything that is not a readable ONNX file with a
:class:`QdqModelError` naming the file and the reason, never a protobuf
traceback. It parses the bytes itself (external data is never loaded with the
model), caps the file size, and caches the analysis by resolved path, size,
modification time and content hash, so a process parses a model once however
many directives ask for it. A file whose status (size, times, inode) has not
changed since it was hashed, and which had not changed for a while then, is
not read again for a cache hit.

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
from sphinxext_qdq.onnxio.files import (
    DEFAULT_MAX_BYTES,
    checked_stat,
    content_hash_of,
    read_bytes,
    resolve_model_file,
)
from sphinxext_qdq.onnxio.proto import QdqModelError, parse_lean

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


class _CacheKey(NamedTuple):
    path: str
    size: int
    mtime_ns: int
    content_hash: str


class _Status(NamedTuple):
    """What ``stat`` says of a file; any write changes ``ctime``."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int


_cache: OrderedDict[_CacheKey, QdqModel] = OrderedDict()
_settled: dict[str, tuple[_Status, str]] = {}  # path -> (status, content hash) known at once
_lock = threading.Lock()
_hit_count = 0


# -- public API ---------------------------------------------------------------
def load_qdq_model(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> QdqModel:
    """Parse and analyse the ONNX model at *path*, or return the cached analysis."""
    resolved = resolve_model_file(path)
    status = checked_stat(resolved, max_bytes)
    mtime_ns = status.st_mtime_ns
    where = str(resolved)
    cached = _settled_hit(where, status)
    if cached is not None:
        return cached
    read_at = time.time_ns()
    data = read_bytes(resolved, max_bytes)  # checked again once open, never above the limit
    if _seen_before(where, len(data), mtime_ns):
        content_hash = content_hash_of(data)
        key = _CacheKey(where, len(data), mtime_ns, content_hash)
        cached = _cached(key)
        if cached is not None:
            _note_settled(where, status, content_hash, read_at)
            return cached
        model = _analysed(parse_lean(data, resolved), resolved, content_hash)
    else:  # surely a miss: hash (releases the GIL) while the model is parsed and analysed
        model = _analysed_while_hashing(data, resolved)
        key = _CacheKey(where, len(data), mtime_ns, model.content_hash)
    _remember(key, model)
    _note_settled(where, status, model.content_hash, read_at)
    return model


def _status(status: os.stat_result) -> _Status:
    return _Status(status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino,
                   status.st_dev)


def _settled_hit(where: str, status: os.stat_result) -> QdqModel | None:
    """The cached analysis of a file whose status is unchanged since it was hashed."""
    with _lock:
        known = _settled.get(where)
    if known is None or known[0] != _status(status):
        return None
    return _cached(_CacheKey(where, status.st_size, status.st_mtime_ns, known[1]))


def _note_settled(where: str, status: os.stat_result, content_hash: str, read_at: int) -> None:
    """Trust *status* for *where* when the file had not changed for a while before it
    was read (a change in the same clock tick as the read would not show in the status)."""
    with _lock:
        if max(status.st_mtime_ns, status.st_ctime_ns) <= read_at - _SETTLED_NS:
            _settled[where] = (_status(status), content_hash)
        else:
            _settled.pop(where, None)


def _cached(key: _CacheKey) -> QdqModel | None:
    global _hit_count
    with _lock:
        model = _cache.get(key)
        data_status = _data_status.get(key, ())
    if model is not None and data_status != _data_files_status(model):
        with _lock:  # an external data file the analysis read has changed since
            _cache.pop(key, None)
            _data_status.pop(key, None)
            _settled.pop(key.path, None)
        return None
    with _lock:
        if model is not None:
            _cache.move_to_end(key)
            _hit_count += 1
        return model


_data_status: dict[_CacheKey, tuple[tuple[str, _Status | None], ...]] = {}


def _data_files_status(model: QdqModel) -> tuple[tuple[str, _Status | None], ...]:
    """What ``stat`` says of the external data files *model* was analysed with."""
    found = []
    for name in model.data_files:
        try:
            found.append((name, _status(os.stat(name))))
        except OSError:
            found.append((name, None))
    return tuple(found)


def _analysed(proto: onnx.ModelProto, path: Path, content_hash: str) -> QdqModel:
    """Analyse a parsed model; a failure of the analysis itself never escapes raw.

    The cyclic garbage collector is paused meanwhile: the analysis allocates tens of
    thousands of objects that all live on, and each collection they trigger walks them
    (and, in a documentation build, Sphinx's large heap) again: 12 % of the analysis of
    a 250-node model, 30 % of a 2,000-node one. It is switched back on afterwards by the
    caller that switched it off."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return analyze(proto, path=str(path), model_dir=path.parent, content_hash=content_hash)
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


def stats() -> dict[str, int]:
    """Cache statistics: parses, cache hits and cached entries."""
    return {"parses": _proto.parse_count(), "hits": _hit_count, "entries": len(_cache)}


def clear_cache() -> None:
    """Forget every cached analysis (the parse counter keeps counting)."""
    with _lock:
        _cache.clear()
        _data_status.clear()
        _settled.clear()


def _seen_before(path: str, size: int, mtime_ns: int) -> bool:
    with _lock:
        return any(k.path == path and k.size == size and k.mtime_ns == mtime_ns for k in _cache)


def _analysed_while_hashing(data: bytes, path: Path) -> QdqModel:
    """Parse and analyse *data* while a thread hashes it (sha256 runs without the GIL)."""
    if len(data) < _THREADED_HASH_BYTES:
        return _analysed(parse_lean(data, path), path, content_hash_of(data))
    digest: list[str] = []
    worker = threading.Thread(target=lambda: digest.append(content_hash_of(data)), daemon=True)
    worker.start()
    try:
        model = _analysed(parse_lean(data, path), path, "")
    finally:
        worker.join()
    return dataclasses.replace(model, content_hash=digest[0])


def _remember(key: _CacheKey, model: QdqModel) -> None:
    data_status = _data_files_status(model)
    with _lock:
        for old in [k for k in _cache if k.path == key.path]:
            del _cache[old]  # an older version of the same file
            _data_status.pop(old, None)
        _cache[key] = model
        _data_status[key] = data_status
        while len(_cache) > CACHE_SIZE:
            _data_status.pop(_cache.popitem(last=False)[0], None)
