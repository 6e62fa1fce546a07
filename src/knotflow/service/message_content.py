"""A message's content: plain `text`, or `object_string` — cozepy's JSON list of parts `{type: text | image |
file | audio, text?, file_id?, file_url?}`. A part's file is an uploaded file (`file_id`, shown as this server's
signed link) or a URL.
"""

from __future__ import annotations

from typing import Any

from knotflow.contract import ContentPart
from knotflow.dsl import jsonutil
from knotflow.errors import BadRequest
from knotflow.files.links import FileLinks
from knotflow.service.access import file_usable
from knotflow.store.records import ChatMessage, Token
from knotflow.store.repository import Store

TEXT, OBJECT_STRING = "text", "object_string"
PART_TYPES = frozenset({"text", "image", "file", "audio"})


def check_content(content_type: str, content: str, label: str) -> None:
    """Refuse content the API may not store: a content type other than text / object_string, or an
    object_string that is not a list of parts each with its text or file."""
    if content_type not in (TEXT, OBJECT_STRING):
        raise BadRequest(f"{label}.content_type must be 'text' or 'object_string'")
    if content_type == OBJECT_STRING:
        parse_parts(content, label)


def parse_parts(content: str, label: str) -> list[dict[str, Any]]:
    try:
        parts = jsonutil.loads(content)
    except jsonutil.JSONDecodeError as exc:
        raise BadRequest(f"{label}.content is not a JSON list") from exc
    if not isinstance(parts, list):
        raise BadRequest(f"{label}.content is not a JSON list")
    for index, part in enumerate(parts):
        where = f"{label}.content[{index}]"
        if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
            raise BadRequest(f"{where} must be an object whose type is text, image, file or audio")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise BadRequest(f"{where} is a text part without its text")
        elif not (isinstance(part.get("file_id"), str | int) and str(part.get("file_id"))) and not (
                isinstance(part.get("file_url"), str) and part.get("file_url")):
            raise BadRequest(f"{where} is a {part['type']} part without file_id or file_url")
    return parts


class MessageContent:
    """Reads messages' content for nodes and models: multimodal parts with their files as URLs."""

    def __init__(self, store: Store, links: FileLinks) -> None:
        self.store = store
        self.links = links

    async def parts(self, content_type: str, content: str, token: Token | None = None) -> list[ContentPart]:
        """A message's parts; a text message is one text part. An uploaded file that no longer exists keeps
        its id as its text, so the part is not silently lost. With `token`, a message the caller sends: a file
        id it may not use (or that does not exist) is refused as unknown."""
        if content_type != OBJECT_STRING:
            return [ContentPart("text", text=content)]
        try:
            raw = parse_parts(content, "message")
        except BadRequest:
            if token is not None:
                raise
            return [ContentPart("text", text=content)]  # stored before checks existed: show it as it is
        parts = []
        for item in raw:
            kind = str(item["type"])
            if kind == "text":
                parts.append(ContentPart("text", text=str(item["text"])))
                continue
            file_id = str(item.get("file_id") or "")
            if file_id:
                record = await self.store.get_file(file_id)
                if token is not None and (record is None or not file_usable(token, record)):
                    raise BadRequest(f"message: file {file_id} does not exist")
                if record is None:
                    parts.append(ContentPart("text", text=file_id))
                    continue
                parts.append(ContentPart(kind, url=self.links.signed_url(record.id, record.file_name),
                                         file_name=record.file_name))
            else:
                parts.append(ContentPart(kind, url=str(item["file_url"])))
        return parts

    async def text(self, message: ChatMessage) -> str:
        """The message as one text (Coze Studio's ConvertMessageToString): its texts, then its files' URLs,
        joined by commas."""
        if message.content_type != OBJECT_STRING:
            return message.content
        return as_text(await self.parts(message.content_type, message.content))


def as_text(parts: list[ContentPart]) -> str:
    """Parts as one text (Coze Studio's ConvertMessageToString): the texts, then the files' URLs, comma-joined."""
    return ",".join([part.text for part in parts if part.type == "text"]
                    + [part.url for part in parts if part.type != "text"])
