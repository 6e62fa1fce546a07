"""File-typed Start parameters: `{"file_id": …}` (an object, or a JSON string of one), a URL, or a list of those.

Coze's open API lets a caller pass an uploaded file by id; the workflow sees every file as a URL. An id, and a
URL of this server's own content endpoint, become a fresh signed link (`FileLinks`) carrying the file's name
in `x-wf-file_name`, after checking that the caller's token may use the file's space. Other URLs pass as they
are. Anything else is refused with a 4000 error naming the parameter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from knotflow.dsl import jsonutil
from knotflow.dsl.types import LIST, OBJECT, TypeInfo
from knotflow.errors import BadRequest
from knotflow.files.links import FileLinks, InvalidLink
from knotflow.service.access import file_usable
from knotflow.store.records import StoredFile, Token
from knotflow.store.repository import Store

FILE_ID = "file_id"
_SHOWN = 80  # how much of a refused value an error message quotes


def holds_files(info: TypeInfo) -> bool:
    if info.is_file:
        return True
    if info.type == LIST and info.element is not None:
        return holds_files(info.element)
    if info.type == OBJECT:
        return any(holds_files(prop) for prop in info.properties.values())
    return False


class FileParameters:
    def __init__(self, store: Store, links: FileLinks) -> None:
        self.store = store
        self.links = links

    async def resolve(self, parameters: list[TypeInfo], values: dict[str, Any], token: Token) -> dict[str, Any]:
        """`values` (already typed by the Start node) with every file reference turned into a URL."""
        resolved = values
        for info in parameters:
            if info.name in values and holds_files(info):
                if resolved is values:
                    resolved = dict(values)
                resolved[info.name] = await self._value(values[info.name], info, info.name, token)
        return resolved

    async def _value(self, value: Any, info: TypeInfo, label: str, token: Token) -> Any:
        if value is None:
            return None
        if info.is_file:
            if not isinstance(value, str):
                raise BadRequest(f"parameter '{label}': expected a file, got {type(value).__name__}")
            return await self._file(value, label, token)
        if info.type == LIST and info.element is not None and isinstance(value, list):
            return [await self._value(item, info.element, f"{label}[{index}]", token)
                    for index, item in enumerate(value)]
        if info.type == OBJECT and isinstance(value, dict):
            result = dict(value)
            for name, prop in info.properties.items():
                if name in result and holds_files(prop):
                    result[name] = await self._value(result[name], prop, f"{label}.{name}", token)
            return result
        return value

    async def _file(self, text: str, label: str, token: Token) -> str:
        stripped = text.strip()
        if stripped.startswith("{"):
            return await self._by_id(_file_id_of(stripped, label), label, token)
        try:
            parts = urlsplit(stripped)
        except ValueError:
            parts = None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise BadRequest(f"parameter '{label}': expected an http(s) URL or {{\"{FILE_ID}\": \"…\"}} from "
                             f"the file upload API, got {_shown(text)}")
        own = self.links.parse(stripped)
        if own is None:
            return text
        try:
            self.links.verify(own.file_id, own.expires, own.signature)
        except InvalidLink:
            return await self._by_id(own.file_id, label, token)
        # A valid signed link lets anyone holding it read the file until it expires, so it may go into a run as
        # it is — and only as it is: signing it afresh would let a link be renewed forever by passing it back in.
        record = await self._record(own.file_id, label)
        assert own.expires is not None and own.signature is not None  # verified
        return self.links.url(record.id, own.expires, own.signature, record.file_name)

    async def _by_id(self, file_id: str, label: str, token: Token) -> str:
        record = await self._record(file_id, label)
        if not file_usable(token, record):
            raise _unknown(file_id, label)  # as access.py reports files of other spaces: like unknown ids
        return self.links.signed_url(record.id, record.file_name)

    async def _record(self, file_id: str, label: str) -> StoredFile:
        record = await self.store.get_file(file_id)
        if record is None:
            raise _unknown(file_id, label)
        return record


def _file_id_of(text: str, label: str) -> str:
    try:
        reference = jsonutil.loads(text)
    except jsonutil.JSONDecodeError as exc:
        raise BadRequest(f"parameter '{label}': {_shown(text)} is not valid JSON") from exc
    file_id = reference.get(FILE_ID) if isinstance(reference, dict) else None
    if isinstance(file_id, int) and not isinstance(file_id, bool):
        file_id = str(file_id)
    if not isinstance(file_id, str) or not file_id.isascii() or not file_id.isdigit() or len(file_id) > 30:
        raise BadRequest(f"parameter '{label}': expected {{\"{FILE_ID}\": \"<id from the file upload API>\"}}, "
                         f"got {_shown(text)}")
    return file_id


def _unknown(file_id: str, label: str) -> BadRequest:
    return BadRequest(f"parameter '{label}': file {file_id} does not exist")


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")
