"""Uploaded files' metadata (their bytes are in the file storage, `knotflow.files`)."""

from __future__ import annotations

import time

from sqlalchemy import RowMapping, insert, select

from knotflow.store import tables as t
from knotflow.store.base import Repository
from knotflow.store.records import StoredFile


def _file(row: RowMapping) -> StoredFile:
    return StoredFile(
        id=row["id"],
        space_id=row["space_id"],
        file_name=row["file_name"],
        bytes=int(row["bytes"]),
        content_type=row["content_type"],
        created_at=int(row["created_at"]),
    )


class FileStore(Repository):
    async def add_file(
        self, file_id: str, space_id: str, file_name: str, size: int, content_type: str
    ) -> StoredFile:
        """Record an uploaded file whose bytes are already in the file storage under `file_id`."""
        now = time.time()
        async with self._writer.begin() as conn:
            await conn.execute(
                insert(t.files).values(
                    id=file_id,
                    space_id=space_id,
                    file_name=file_name,
                    bytes=size,
                    content_type=content_type,
                    created_at=now,
                )
            )
        return StoredFile(
            id=file_id,
            space_id=space_id,
            file_name=file_name,
            bytes=size,
            content_type=content_type,
            created_at=int(now),
        )

    async def get_file(self, file_id: str) -> StoredFile | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.files).where(t.files.c.id == file_id))).mappings().first()
        return None if row is None else _file(row)
