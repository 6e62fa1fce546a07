"""Where uploaded files' bytes live. Routes only see `FileStorage`, so an S3-compatible store can replace the
local disk later without touching them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

from knotflow.files.errors import FileTooLarge

# Request chunks are small (often 64 KiB); gathering them into bigger writes saves thread hops.
_WRITE_BUFFER = 1024 * 1024
_READ_CHUNK = 256 * 1024
_PARTIAL_SUFFIX = ".part"

log = logging.getLogger(__name__)


class FileRecord(Protocol):
    """What the file storage needs to know of an uploaded file (the store's record of it)."""

    @property
    def file_name(self) -> str: ...

    @property
    def bytes(self) -> int: ...

    @property
    def content_type(self) -> str: ...


class FileRecords(Protocol):
    """Where uploaded files are recorded (the store)."""

    async def get_file(self, file_id: str) -> FileRecord | None: ...


class FileStorage(Protocol):
    async def save(self, file_id: str, chunks: AsyncIterator[bytes], limit: int) -> int:
        """Store everything `chunks` yields under `file_id`; returns the size.

        More than `limit` bytes: FileTooLarge. On any error (also one raised by `chunks`) nothing is left
        behind and the error propagates.
        """
        ...

    async def open(self, file_id: str) -> AsyncIterator[bytes]:
        """The file's bytes in chunks. An unknown id raises FileNotFoundError here, before any chunk."""
        ...

    async def delete(self, file_id: str) -> None:
        """Remove the file; an unknown id is not an error."""
        ...

    async def remove_abandoned_uploads(self) -> int:
        """Remove what uploads cut short by a crash left behind (called at start); returns how many."""
        ...


def _check_id(file_id: str) -> str:
    # Ids become path components: only knotflow's numeric ids, so nothing can climb out of the root.
    if not file_id.isascii() or not file_id.isdigit():
        raise ValueError(f"invalid file id {file_id!r}")
    return file_id


class LocalFileStorage:
    """Files under `root`, sharded by the id's last two digits so no directory grows without bound.

    An upload is written to `root/.tmp/` and renamed into place only when complete, so a reader never sees a
    partial file and a failed upload leaves nothing under its final name. While it is written, the partial file
    is held under an exclusive `flock`: the kernel drops the lock when the process dies, so at start-up a
    partial file nobody holds is a crash's leftover, while one another server process is still writing is
    left alone. Disk I/O runs on worker threads.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def partial_dir(self) -> Path:
        return self.root / ".tmp"

    def path(self, file_id: str) -> Path:
        _check_id(file_id)
        return self.root / file_id[-2:] / file_id

    async def save(self, file_id: str, chunks: AsyncIterator[bytes], limit: int) -> int:
        final = self.path(file_id)
        temp = self.partial_dir / f"{file_id}.{secrets.token_hex(4)}{_PARTIAL_SUFFIX}"
        handle = await asyncio.to_thread(_create, temp)
        size = 0
        buffer = bytearray()
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise FileTooLarge(limit)
                buffer += chunk
                if len(buffer) >= _WRITE_BUFFER:
                    await asyncio.to_thread(handle.write, buffer)
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(handle.write, buffer)
            await asyncio.to_thread(_commit, handle, temp, final)
        except BaseException:
            # Synchronous on purpose: on cancellation another await here could be cancelled too, and the
            # partial file would stay. Closing and unlinking one file is quick.
            handle.close()
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise
        return size

    async def open(self, file_id: str) -> AsyncIterator[bytes]:
        path = self.path(file_id)
        handle = await asyncio.to_thread(path.open, "rb")
        return _read(handle)

    async def delete(self, file_id: str) -> None:
        await asyncio.to_thread(self.path(file_id).unlink, missing_ok=True)

    async def remove_abandoned_uploads(self) -> int:
        removed = await asyncio.to_thread(_remove_unlocked, self.partial_dir)
        if removed:
            log.info("removed %d partial upload(s) left by an earlier crash from %s", removed, self.partial_dir)
        return removed


def _create(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created and locked under another name, then renamed: a `.part` file is never visible unlocked while its
    # upload is alive, so a clean-up starting at that moment cannot take it for a leftover.
    fresh = path.with_name(f"{path.name}.new")
    handle = fresh.open("xb")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(fresh, path)
    except BaseException:
        handle.close()
        fresh.unlink(missing_ok=True)
        raise
    return handle


def _remove_unlocked(directory: Path) -> int:
    removed = 0
    for path in directory.glob(f"*{_PARTIAL_SUFFIX}") if directory.is_dir() else ():
        try:
            with path.open("rb") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
        except BlockingIOError:
            continue  # an upload in progress in another server process
        except FileNotFoundError:
            continue  # finished (renamed) or failed (removed) since the listing
        removed += 1
    return removed


def _commit(handle: BinaryIO, temp: Path, final: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())  # the rename must not publish a file whose data is still only in memory
    handle.close()
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, final)


async def _read(handle: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, _READ_CHUNK):
            yield chunk
    finally:
        handle.close()
