"""Reading a file value's bytes, for nodes that need them: workflows pass files around as URLs, and only a node
that looks inside a file fetches it, when it runs.

Fetching a URL a caller chose must not become a way into the server's own network (SSRF): every connection,
redirects included, goes through the outbound address guard (`knotflow.outbound.guard`, shared with the HTTP
request node): public addresses only, unless KNOTFLOW_URL_FETCH_ALLOW permits them. A link to this server's own
content endpoint is read straight from the file storage, after the same signature check the endpoint makes.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import httpx

from knotflow.config import Settings
from knotflow.contract import FetchedFile
from knotflow.dsl.files import FILE_NAME_PARAM
from knotflow.errors import NodeError
from knotflow.files.links import FileLinks, InvalidLink
from knotflow.files.storage import FileRecords, FileStorage
from knotflow.outbound.guard import OutboundRefused, guarded_client

MAX_REDIRECTS = 5
_INTERNAL_CODE = 720701014
_DEFAULT_TYPE = "application/octet-stream"
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*[^']*'[^']*'([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*"?([^";]+)"?', re.IGNORECASE)


class FetchRefused(OutboundRefused):
    """The URL is not one knotflow will fetch: its scheme is not http(s), a link of this server is not validly
    signed. (An address the guard refuses raises the guard's own OutboundRefused.)"""


class FetchFailed(NodeError):
    """The URL could not be read: an HTTP error, a timeout, a file over the size limit, …"""

    def __init__(self, message: str) -> None:
        super().__init__(message, internal_code=_INTERNAL_CODE)


class UrlFetcher:
    def __init__(self, settings: Settings, links: FileLinks, storage: FileStorage, records: FileRecords) -> None:
        self.max_bytes = settings.url_fetch_max_bytes
        self.timeout = settings.url_fetch_timeout
        self.links = links
        self.storage = storage
        self.records = records
        self._client = guarded_client(
            settings.url_fetch_allow,
            follow_redirects=False,  # followed below, so that a redirect to this server's own link reads storage
            timeout=self.timeout,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str) -> FetchedFile:
        """The file at `url`, at most `url_fetch_max_bytes`, within `url_fetch_timeout` seconds in all."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(url)
        except TimeoutError as exc:
            raise FetchFailed(f"fetching {_short(url)} took longer than {self.timeout:g} seconds") from exc

    async def _follow(self, url: str) -> FetchedFile:
        for _ in range(MAX_REDIRECTS + 1):
            own = self.links.parse(url)
            if own is not None:
                return await self._from_storage(own.file_id, own.expires, own.signature, url)
            if urlsplit(url).scheme.lower() not in ("http", "https"):
                raise FetchRefused(f"only http and https URLs can be fetched, not {_short(url)}")
            try:
                async with self._client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    return await self._read(response, url)
            except httpx.HTTPError as exc:
                raise FetchFailed(f"fetching {_short(url)} failed: {exc}") from exc
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects fetching {_short(url)}")

    async def _read(self, response: httpx.Response, url: str) -> FetchedFile:
        if response.status_code >= 400:
            raise FetchFailed(f"fetching {_short(url)} failed: HTTP {response.status_code}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchFailed(f"the file at {_short(url)} is larger than the limit of {self.max_bytes} bytes")
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > self.max_bytes:
                raise FetchFailed(f"the file at {_short(url)} is larger than the limit of {self.max_bytes} bytes")
        name = _name_of(url, response.headers.get("content-disposition", ""))
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        return FetchedFile(bytes(data), content_type or _guess_type(name), name)

    async def _from_storage(self, file_id: str, expires: str | None, signature: str | None, url: str) -> FetchedFile:
        try:
            self.links.verify(file_id, expires, signature)
        except InvalidLink as exc:
            raise FetchRefused(f"cannot read {_short(url)}: {exc}") from exc
        record = await self.records.get_file(file_id)
        if record is None:
            raise FetchFailed(f"file {file_id} does not exist")
        if record.bytes > self.max_bytes:
            raise FetchFailed(f"file {file_id} is larger than the limit of {self.max_bytes} bytes")
        try:
            chunks = await self.storage.open(file_id)
        except FileNotFoundError as exc:
            raise FetchFailed(f"the content of file {file_id} is missing from the file storage") from exc
        data = bytearray()
        async for chunk in chunks:
            data += chunk
        return FetchedFile(bytes(data), record.content_type, record.file_name)


def _name_of(url: str, disposition: str) -> str:
    """Coze's `x-wf-file_name`, else the server's Content-Disposition, else the URL path's last segment."""
    parts = urlsplit(url)
    named = parse_qs(parts.query).get(FILE_NAME_PARAM)
    if named and named[-1]:
        return named[-1]
    if match := _FILENAME_STAR.search(disposition):
        return unquote(match.group(1).strip())
    if match := _FILENAME.search(disposition):
        return match.group(1).strip()
    return unquote(parts.path.rsplit("/", 1)[-1])


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or _DEFAULT_TYPE


def _short(url: str) -> str:
    # Links may carry credentials in their query (pre-signed URLs): messages show the address only.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else repr(url[:80])
