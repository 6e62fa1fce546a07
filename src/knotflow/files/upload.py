"""Reading `POST /v1/files/upload` off the wire: a multipart/form-data body with one part named `file`.

Starlette's `request.form()` is not used: it spools every file part into a SpooledTemporaryFile first (a
second full copy on disk, with no size limit of its own), and only then would knotflow get to look at it. Here
python-multipart's streaming `MultipartParser` is fed the request chunk by chunk and the `file` part's bytes
go straight on to `FileStorage.save`, which enforces the size limit as they arrive. Nothing but the current
chunk is held in memory.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from knotflow.files.errors import CorruptUpload, FileTooLarge, TooManyFiles, UnsupportedUpload

if TYPE_CHECKING:  # python-multipart defines its callback TypedDict for type checkers only
    from python_multipart.multipart import MultipartCallbacks

FIELD = "file"
# Boundaries, part headers and the odd small extra field: what a body may carry beyond the file itself.
MULTIPART_OVERHEAD = 64 * 1024
MAX_BOUNDARY = 70  # RFC 2046 §5.1.1
_MAX_HEADER_COUNT = 16
_MAX_HEADER_SIZE = 8 * 1024
_NAME_LIMIT = 255  # the files.file_name column
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
_DEFAULT_TYPE = "application/octet-stream"


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a request's Content-Type; anything but multipart/form-data is refused."""
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        raise UnsupportedUpload(f"upload the file as multipart/form-data with one field '{FIELD}'")
    boundary = options.get(b"boundary")
    if not boundary:
        raise CorruptUpload("the multipart/form-data Content-Type has no boundary")
    if len(boundary) > MAX_BOUNDARY:
        raise CorruptUpload(f"the multipart boundary is longer than {MAX_BOUNDARY} characters (RFC 2046)")
    return boundary


def check_declared_length(content_length: str | None, limit: int) -> None:
    """Refuse before reading anything when the declared body cannot hold a file within the limit."""
    if content_length is None:
        return  # chunked: the limit is enforced while streaming
    try:
        declared = int(content_length)
    except ValueError as exc:
        raise CorruptUpload("invalid Content-Length") from exc
    if declared > limit + MULTIPART_OVERHEAD:
        raise FileTooLarge(limit)



class UploadReader:
    """Parses the body as it streams in; `chunks()` yields the `file` part's data.

    After the iterator ends (the whole body is parsed), `found`, `file_name` and `content_type` describe the
    part. A second file part raises TooManyFiles, a malformed or truncated body CorruptUpload, and a body
    larger than `body_limit` FileTooLarge, all from inside the iteration, so the storage discards what it
    wrote.
    """

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes, file_limit: int) -> None:
        self._body = body
        self._file_limit = file_limit
        self._body_limit = file_limit + MULTIPART_OVERHEAD
        callbacks: MultipartCallbacks = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }
        self._parser = MultipartParser(
            boundary, callbacks, max_header_count=_MAX_HEADER_COUNT, max_header_size=_MAX_HEADER_SIZE
        )
        self.found = False
        self.file_name = ""
        self.content_type = _DEFAULT_TYPE
        self._files = 0
        self._in_file = False
        self._ended = False
        self._pending: list[bytes] = []
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""

    async def chunks(self) -> AsyncIterator[bytes]:
        received = 0
        try:
            async for chunk in self._body:
                received += len(chunk)
                if received > self._body_limit:
                    raise FileTooLarge(self._file_limit)
                self._parser.write(chunk)
                if self._pending:
                    data = b"".join(self._pending)
                    self._pending.clear()
                    yield data
            self._parser.finalize()
        except FormParserError as exc:
            raise CorruptUpload(f"the multipart body is malformed: {exc}") from exc
        except ClientDisconnect as exc:
            raise CorruptUpload("the client closed the connection before sending the whole file") from exc
        if not self._ended:
            # python-multipart's finalize() does not check that the closing boundary arrived.
            raise CorruptUpload("the multipart body ended before its closing boundary")

    # python-multipart callbacks -------------------------------------------------------------------------
    def _part_begin(self) -> None:
        self._headers = {}
        self._in_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b"").decode("latin-1"))
        if disposition != b"form-data":
            raise CorruptUpload("a multipart part has no 'Content-Disposition: form-data' header")
        name = options.get(b"name")
        filename = options.get(b"filename")
        if name != FIELD.encode() and filename is None:
            return  # an ordinary extra form field: ignored
        self._files += 1
        if self._files > 1:
            raise TooManyFiles(f"upload exactly one file, in the field '{FIELD}'")
        if name != FIELD.encode():
            return  # a file under another name: reported as a missing 'file' field unless a second one follows
        self.found = True
        self._in_file = True
        self.file_name = _file_name(filename)
        self.content_type = _content_type(self._headers.get(b"content-type"), self.file_name)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False

    def _end(self) -> None:
        self._ended = True


def _file_name(raw: bytes | None) -> str:
    if not raw:
        return "file"
    # parse_options_header hands back the header's bytes; browsers and httpx send UTF-8 there.
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        name = raw.decode("latin-1")
    # Only the last path component: some clients send a full path, and the name is shown, never used as one.
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:_NAME_LIMIT] or "file"


def _content_type(raw: bytes | None, file_name: str) -> str:
    declared = (raw or b"").decode("latin-1").split(";", 1)[0].strip().lower()
    if declared and declared != _DEFAULT_TYPE and len(declared) <= _NAME_LIMIT and _CONTENT_TYPE.match(declared):
        return declared
    guessed, _ = mimetypes.guess_type(file_name)
    return guessed or _DEFAULT_TYPE
