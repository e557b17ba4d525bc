"""Model files on disk: checked before they are opened, read, hashed.

Every path the extension opens goes through here first: a missing file, a directory, a
FIFO or device, a symbolic-link loop or a file above the size limit is a
:class:`~sphinxext_qdq.onnxio.errors.QdqModelError`, never a hang or a traceback.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sphinxext_qdq.onnxio.errors import QdqModelError

#: Largest model file :func:`load_qdq_model` accepts unless told otherwise (512 MiB).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


# -- file checks -----------------------------------------------------------------
def resolve_model_file(path: str | os.PathLike[str]) -> Path:
    given = Path(path)
    try:
        if not given.exists():
            raise QdqModelError(path, "no such file")
        if given.is_dir():
            raise QdqModelError(path, "is a directory, not an ONNX file")
        resolved = given.resolve()
    except (OSError, ValueError) as error:  # embedded NUL, symlink loop, permissions
        raise QdqModelError(repr(os.fspath(path)), f"not a usable path ({error})") from None
    if not resolved.is_file():
        raise QdqModelError(path, "is not a regular file")
    return resolved


def checked_stat(path: Path, max_bytes: int) -> os.stat_result:
    """The file's status, refused when it is empty or larger than *max_bytes*."""
    status = path.stat()
    if status.st_size == 0:
        raise QdqModelError(path, "the file is empty")
    if status.st_size > max_bytes:
        raise QdqModelError(path, f"the file is {status.st_size} bytes, more than the limit of "
                                  f"{max_bytes} bytes (raise max_bytes to load it)")
    return status


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise QdqModelError(path, f"cannot be read ({error.strerror or error})") from None



def content_hash_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
