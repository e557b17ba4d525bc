"""Model files on disk: checked before they are opened, read, hashed.

Every path the extension opens goes through here first: a missing file, a directory, a
FIFO or device, a symbolic-link loop or a file above the size limit is a
:class:`~sphinxext_qdq.onnxio.errors.QdqModelError`, never a hang or a traceback.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sphinxext_qdq.onnxio.errors import QdqModelError

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Largest model file :func:`load_qdq_model` accepts unless told otherwise (512 MiB).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024

#: Largest array (elements) allocated from a size the model declares unless told otherwise:
#: a declared input shape, a weight, test vectors (``qdq_max_elements``, ``--max-elements``).
DEFAULT_MAX_ELEMENTS = 1 << 24

#: Most values read for one scale or zero point unless told otherwise
#: (``qdq_max_param_values``, ``--max-param-values``; a per-channel scale has thousands at
#: most): a larger tensor is reported (``qdq.value``), never turned into a value list.
DEFAULT_MAX_PARAM_VALUES = 1 << 20


# -- file checks -----------------------------------------------------------------
def resolve_model_file(path: str | os.PathLike[str]) -> Path:
    """*path* resolved, refused unless it names an existing regular file."""
    return regular_file(path, "an ONNX file")


def regular_file(path: str | os.PathLike[str], what: str = "a file") -> Path:
    """*path* resolved (symbolic links followed), refused with a :class:`QdqModelError`
    unless it is an existing regular file: never a FIFO or a device (opening one can
    block for ever or read for ever), a directory, a symbolic-link loop."""
    try:
        given = Path(path)
        status = os.stat(given)  # follows links: ELOOP for a loop, ENOENT for a dangling one
        resolved = given.resolve(strict=True)
    except FileNotFoundError:
        raise QdqModelError(path, "no such file") from None
    except (OSError, ValueError, RuntimeError, TypeError) as error:  # loop, NUL, permissions
        raise QdqModelError(repr(os.fspath(path)), f"not a usable path ({_reason(error)})"
                            ) from None
    if stat.S_ISDIR(status.st_mode):
        raise QdqModelError(path, f"is a directory, not {what}")
    if not stat.S_ISREG(status.st_mode):
        raise QdqModelError(path, f"is a {_kind(status.st_mode)}, not {what} (only regular "
                                  "files are read)")
    return resolved


def checked_file(path: str | os.PathLike[str], max_bytes: int, what: str = "a file") -> Path:
    """:func:`regular_file` and :func:`checked_stat`: a regular file within *max_bytes*."""
    resolved = regular_file(path, what)
    checked_stat(resolved, max_bytes)
    return resolved


def read_checked(path: str | os.PathLike[str], max_bytes: int, what: str = "a file") -> bytes:
    """The bytes of a regular file within *max_bytes* (checked before it is opened)."""
    return read_bytes(checked_file(path, max_bytes, what), max_bytes)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _reason(error: BaseException) -> str:
    if isinstance(error, RuntimeError) or getattr(error, "errno", None) == errno.ELOOP:
        return "a loop of symbolic links"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def checked_stat(path: Path, max_bytes: int) -> os.stat_result:
    """The file's status, refused when it is empty or larger than *max_bytes*."""
    status = path.stat()
    if status.st_size == 0:
        raise QdqModelError(path, "the file is empty")
    if status.st_size > max_bytes:
        raise QdqModelError(path, f"the file is {status.st_size} bytes, more than the limit of "
                                  f"{max_bytes} bytes (raise max_bytes to load it)")
    return status


@contextmanager
def opened_regular(path: str | os.PathLike[str]) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """*path* open for reading with its status, refused unless it is a regular file. It is
    opened without blocking (a FIFO without a writer would block the ``open`` for ever)
    and checked once open (it may have been replaced since an earlier check); reading
    errors become :class:`QdqModelError`."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                             | getattr(os, "O_BINARY", 0))
    except (OSError, ValueError, TypeError) as error:
        raise QdqModelError(path, f"cannot be read ({_reason(error)})") from None
    try:
        status = os.fstat(descriptor)  # before fdopen, which refuses a folder with a traceback
    except OSError as error:
        os.close(descriptor)
        raise QdqModelError(path, f"cannot be read ({_reason(error)})") from None
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        what = "directory" if stat.S_ISDIR(status.st_mode) else _kind(status.st_mode)
        raise QdqModelError(path, f"is a {what}, not a regular file")
    with os.fdopen(descriptor, "rb") as stream:
        try:
            yield stream, status
        except OSError as error:
            raise QdqModelError(path, f"cannot be read ({_reason(error)})") from None


def read_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file (checked once open: never more than *max_bytes*)."""
    with opened_regular(path) as (stream, status):
        limit = status.st_size if max_bytes is None else min(status.st_size, max_bytes)
        data = stream.read(limit + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise QdqModelError(path, f"the file grew above the limit of {max_bytes} bytes "
                                  "while it was read")
    return data


def read_range(path: Path, offset: int, length: int) -> bytes:
    """*length* bytes at *offset* of a regular file (checked once open)."""
    with opened_regular(path) as (stream, status):
        if offset + length > status.st_size:
            raise QdqModelError(path, f"[{offset}, {offset + length}) lies beyond the end "
                                      f"of the file ({status.st_size} bytes)")
        stream.seek(offset)
        return stream.read(length)


def hash_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a regular file's content, read in *chunk* pieces."""
    digest = hashlib.sha256()
    with opened_regular(path) as (stream, _status):
        while piece := stream.read(chunk):
            digest.update(piece)
    return digest.hexdigest()


def content_hash_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
