"""Multimodal prompts (Coze Studio's llm prompt.go): where a user prompt shows a file, the model gets the file
itself, not its URL as text.

A placeholder of an input that is a file (an image, a document... by its assistType) becomes an image or file
part; in a chat whose user message is multimodal, a placeholder of an input that reads the Start node's
USER_INPUT becomes that message's parts (its texts and files). The files are sent inline (base64 data URLs,
read through the run's file fetcher, which reads this server's own links from storage), so the model endpoint
need not reach them; a file that cannot be read is sent as its URL.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from knotflow.contract import ContentPart, NodeContext, Template, lookup
from knotflow.contract.template import is_missing
from knotflow.dsl.canvas import Param
from knotflow.dsl.files import strip_file_name_param
from knotflow.dsl.types import LIST, TypeInfo
from knotflow.dsl.values import BLOCK_OUTPUT, Ref

USER_INPUT = "USER_INPUT"
_IMAGES, _AUDIO, _VIDEO = frozenset({2, 11}), frozenset({8, 12}), frozenset({10})
_FILE_TYPES = frozenset(range(1, 13))


def _file_kind(info: TypeInfo) -> str | None:
    target = info.element if info.type == LIST and info.element is not None else info
    if target.assist_type not in _FILE_TYPES:
        return None
    if target.assist_type in _IMAGES:
        return "image"
    if target.assist_type in _AUDIO:
        return "audio"
    return "video" if target.assist_type in _VIDEO else "file"


def file_inputs(params: Sequence[Param]) -> dict[str, str]:
    """The inputs that hold files, and what kind (image, audio, video, file)."""
    return {p.name: kind for p in params if (kind := _file_kind(p.type)) is not None}


def user_input_fields(params: Sequence[Param]) -> set[str]:
    """The inputs that read the chat's user message (the Start node's USER_INPUT)."""
    return {p.name for p in params if isinstance(p.source, Ref) and p.source.source == BLOCK_OUTPUT
            and p.source.path == (USER_INPUT,)}


def prompt_parts(template: Template, values: Mapping[str, Any], skipped: Collection[str], files: Mapping[str, str],
                 user_fields: Collection[str], user_message: Sequence[ContentPart] | None) -> list[ContentPart] | None:
    """The rendered prompt as parts, or None when it shows no file (then it is plain text)."""
    parts: list[ContentPart] = []
    multimodal = False
    for part in template.parts:
        root = part.root
        if root is not None and root not in skipped and not part.path:
            if root in user_fields and user_message and any(p.type != "text" for p in user_message):
                parts.extend(user_message)
                multimodal = True
                continue
            if root in files and root in values:
                urls = _urls(lookup(values[root], part.path))
                if urls:
                    parts.extend(ContentPart(files[root], url=url) for url in urls)
                    multimodal = True
                    continue
        parts.append(ContentPart("text", text=template.render_part(part, values, skipped)))
    return parts if multimodal else None


def _urls(value: Any) -> list[str]:
    if is_missing(value):
        return []
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, str) and item.startswith(("http://", "https://"))]


async def openai_parts(ctx: NodeContext, parts: Sequence[ContentPart]) -> list[dict[str, Any]]:
    """The parts as an OpenAI-compatible chat message's content; adjacent texts are joined."""
    content: list[dict[str, Any]] = []
    for part in parts:
        if part.type == "text":
            if content and content[-1]["type"] == "text":
                content[-1]["text"] += part.text
            elif part.text:
                content.append({"type": "text", "text": part.text})
            continue
        url, name = await _inline(ctx, part)
        if part.type == "image":
            content.append({"type": "image_url", "image_url": {"url": url}})
        else:
            content.append({"type": "file", "file": {"filename": name, "file_data": url}})
    return content


async def _inline(ctx: NodeContext, part: ContentPart) -> tuple[str, str]:
    """The file as a data URL and its name; its URL as it is when it cannot be read."""
    fetcher = ctx.services.files
    name = part.file_name or strip_file_name_param(part.url).rsplit("/", 1)[-1].split("?", 1)[0]
    if fetcher is None:
        return part.url, name
    try:
        fetched = await fetcher.fetch(part.url)
    except Exception:  # the endpoint may still reach the URL itself; the node must not fail for an unread copy
        return part.url, name
    encoded = base64.b64encode(fetched.data).decode()
    return f"data:{fetched.content_type or 'application/octet-stream'};base64,{encoded}", fetched.file_name or name
