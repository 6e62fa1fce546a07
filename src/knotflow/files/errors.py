"""Coze's file-upload error codes (4300–4304), as knotflow errors so routes answer them like any other."""

from __future__ import annotations

from knotflow.errors import KnotflowError


class EmptyFile(KnotflowError):
    code = 4300


class TooManyFiles(KnotflowError):
    code = 4301


class FileTooLarge(KnotflowError):
    code = 4302

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file exceeds the upload limit of {limit} bytes")
        self.limit = limit


class UnsupportedUpload(KnotflowError):
    code = 4303


class CorruptUpload(KnotflowError):
    code = 4304
