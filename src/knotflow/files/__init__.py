"""Uploaded files: where their bytes are kept (storage) and how an upload is read off the wire (upload)."""

from __future__ import annotations

from knotflow.files.errors import CorruptUpload, EmptyFile, FileTooLarge, TooManyFiles, UnsupportedUpload
from knotflow.files.storage import FileStorage, LocalFileStorage

__all__ = [
    "CorruptUpload",
    "EmptyFile",
    "FileStorage",
    "FileTooLarge",
    "LocalFileStorage",
    "TooManyFiles",
    "UnsupportedUpload",
]
