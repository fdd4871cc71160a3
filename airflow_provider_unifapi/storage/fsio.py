"""Byte-level file operations inside one run folder: plain ``os`` calls on local disks (through fsspec
each small per-page write costs several hundred microseconds), fsspec elsewhere."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import IO, Any, cast

from fsspec.implementations.local import LocalFileSystem
from upath import UPath


def local_folder(url: Any) -> Any | None:
    """A ``file://`` URL as a plain UPath, else ``None``: the first ``ObjectStoragePath(...).fs``
    imports every installed provider's filesystem module (0.1-0.5 s), which a local folder never needs."""
    if not isinstance(url, str) or not url.startswith("file://"):
        return None
    return UPath(url)


class FolderIO:
    """Read, write, rename and delete files by name inside a folder.

    :param folder: an ``ObjectStoragePath`` or UPath (its ``fs`` and ``path`` are used).
    """

    def __init__(self, folder: Any) -> None:
        self.fs = folder.fs
        self.root = str(folder.path).rstrip("/") or "/"
        self.local = isinstance(self.fs, LocalFileSystem)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}" if name else self.root

    def makedirs(self, name: str = "") -> None:
        self.fs.makedirs(self.path(name), exist_ok=True)

    def write(self, name: str, data: bytes) -> None:
        if self.local:
            with open(self.path(name), "wb") as handle:
                handle.write(data)
        else:
            self.fs.pipe_file(self.path(name), data)

    def create(self, name: str, data: bytes) -> None:
        """Write a new file; :class:`FileExistsError` if it is there (create-only, as atomic as the store)."""
        if self.local:
            # Written whole aside, then linked into place: link fails if the name exists, and a
            # reader never sees the file before its bytes (as it would between O_EXCL and write).
            aside = self.path(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(aside, "wb") as handle:
                handle.write(data)
            try:
                os.link(aside, self.path(name))
            except FileExistsError:
                raise
            except OSError:  # a filesystem without hard links: O_EXCL, then the bytes
                with open(self.path(name), "xb") as handle:
                    handle.write(data)
            finally:
                os.unlink(aside)
            return
        try:
            self.fs.pipe_file(self.path(name), data, mode="create")
        except TypeError:  # a filesystem without create-only writes: check, then write
            if self.fs.exists(self.path(name)):
                raise FileExistsError(self.path(name)) from None
            self.fs.pipe_file(self.path(name), data)

    def read(self, name: str) -> bytes:
        if self.local:
            with open(self.path(name), "rb") as handle:
                return handle.read()
        return bytes(self.fs.cat_file(self.path(name)))

    def open(self, name: str, mode: str) -> IO[bytes]:
        if self.local:
            return open(self.path(name), mode)
        return cast(IO[bytes], self.fs.open(self.path(name), mode))

    def replace(self, source: str, target: str) -> None:
        """Move ``source`` over ``target`` (atomic on local disks; copy + delete on object stores)."""
        if self.local:
            os.replace(self.path(source), self.path(target))
        else:
            self.fs.mv(self.path(source), self.path(target))

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self.path(name)))

    def delete(self, name: str) -> None:
        try:
            if self.local:
                os.unlink(self.path(name))
            else:
                self.fs.rm_file(self.path(name))
        except FileNotFoundError:
            pass

    def listdir(self, name: str = "") -> list[str]:
        """Names (not paths) of the entries of a sub-folder; empty when it does not exist."""
        try:
            if self.local:
                return os.listdir(self.path(name))
            return [
                entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(self.path(name), detail=False)
            ]
        except FileNotFoundError:
            return []

    def rmdir(self, name: str) -> None:
        """Remove an empty sub-folder (object stores have none to remove)."""
        if self.local:
            with contextlib.suppress(OSError):
                os.rmdir(self.path(name))
