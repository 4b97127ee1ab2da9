"""Where attachment bytes live, behind a three-method interface so an object store can replace the disk.

Keys are content addresses (``sha256/ab/<hex>``): a client's file name never becomes a path, an
identical file sent twice (retries, split uploads, edits carrying attachments over) is stored once, and
two processes writing the same key at once write the same bytes, so either rename wins harmlessly.

An S3-compatible store implements the same three methods (``put_object``, ``get_object``,
``head_object`` with the same keys; see docs/scaling.md); nothing else in the backend changes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path


def blob_key(data: bytes) -> str:
    """The content address of ``data``."""
    digest = hashlib.sha256(data).hexdigest()
    return f"sha256/{digest[:2]}/{digest}"  # one level of 256 directories: few directory creations


class BlobStore(ABC):
    """Immutable bytes by key. ``put`` returns only once the bytes are durable."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the bytes of a key no row names any more (plaintext replaced by its sealed form)."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete")


class FileBlobStore(BlobStore):
    """Blobs as files under ``root`` (a local disk, or a shared NFS/CephFS path for several machines)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") or "\\" in p for p in parts):
            raise ValueError(f"khóa không hợp lệ / invalid blob key: {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():  # content-addressed: an existing file already holds these bytes
            return
        self._ensure_dir(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def _ensure_dir(self, directory: Path) -> None:
        """Create the shard directories, making each new entry durable in its parent."""
        if directory.is_dir():
            return
        self._ensure_dir(directory.parent)
        try:
            directory.mkdir()
        except FileExistsError:
            return
        _fsync_dir(directory.parent)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: the directory entry must reach the disk too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
