"""Coze's files API (`files.upload`, `files.retrieve`) and knotflow's own endpoint serving a file's bytes."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from knotflow.api import errors
from knotflow.api.bodies import body_chunks
from knotflow.api.state import AppState, open_api
from knotflow.errors import BadRequest, NotFound, PermissionDenied
from knotflow.files.errors import EmptyFile, UnsupportedUpload
from knotflow.files.links import EXPIRES_PARAM, SIGNATURE_PARAM, InvalidLink
from knotflow.files.upload import FIELD, UploadReader, boundary_of, check_declared_length
from knotflow.ids import new_id
from knotflow.service.access import PERMISSION_READ, PERMISSION_RUN, check_permission, token_space, visible_file
from knotflow.store.records import StoredFile, Token


def file_item(record: StoredFile) -> dict[str, Any]:
    return {
        "id": record.id,
        "bytes": record.bytes,
        "created_at": record.created_at,
        "file_name": record.file_name,
    }


@open_api
async def upload_file(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    return errors.ok(file_item(await receive_upload(request, state, token)), logid)


async def receive_upload(request: Request, state: AppState, token: Token) -> StoredFile:
    """Stream a multipart upload's `file` part into the file storage and record it in the token's space."""
    limit = state.settings.max_upload_bytes
    file_id = new_id()
    check_permission(token, PERMISSION_RUN)
    boundary = boundary_of(request.headers.get("content-type"))
    check_declared_length(request.headers.get("content-length"), limit)
    space_id = await token_space(state.store, token)
    reader = UploadReader(body_chunks(request, state.settings.body_timeout), boundary, limit)
    size = await state.files.save(file_id, reader.chunks(), limit)
    try:
        if not reader.found:
            raise UnsupportedUpload(f"the upload has no field '{FIELD}'")
        if size == 0:
            raise EmptyFile("the uploaded file is empty")
        record = await state.store.add_file(file_id, space_id, reader.file_name, size, reader.content_type)
    except BaseException:
        # The bytes are stored but will never be recorded: remove them. Best effort while failing anyway.
        with contextlib.suppress(Exception):
            await state.files.delete(file_id)
        raise
    return record


async def _visible_file(request: Request, state: AppState, file_id: str | None) -> StoredFile:
    token = await state.auth(request)
    check_permission(token, PERMISSION_READ)
    if not file_id:
        raise BadRequest("file_id is required")
    record = await state.store.get_file(file_id) if file_id.isascii() and file_id.isdigit() else None
    return visible_file(token, record, file_id)


@open_api
async def retrieve_file(request: Request, state: AppState, logid: str) -> Response:
    record = await _visible_file(request, state, request.query_params.get("file_id"))
    return errors.ok(file_item(record), logid)


async def _linked_file(request: Request, state: AppState, file_id: str) -> StoredFile:
    """The file a signed link names: the signature stands in for the token."""
    query = request.query_params
    state.file_links.verify(file_id, query.get(EXPIRES_PARAM), query.get(SIGNATURE_PARAM))
    record = await state.store.get_file(file_id)
    if record is None:
        raise NotFound(f"file {file_id} does not exist")
    return record


@open_api
async def file_content(request: Request, state: AppState, logid: str) -> Response:
    file_id = request.path_params["file_id"]
    query = request.query_params
    if SIGNATURE_PARAM in query or EXPIRES_PARAM in query:
        try:
            record = await _linked_file(request, state, file_id)
        except InvalidLink as exc:
            # A link is opened by browsers and download tools, which go by the HTTP status, not the body.
            body = {"code": PermissionDenied.code, "msg": str(exc), "detail": {"logid": logid}}
            return errors.JSONBody(body, status_code=403, headers={errors.LOGID_HEADER: logid})
    else:
        record = await _visible_file(request, state, file_id)
    try:
        chunks = await state.files.open(record.id)
    except FileNotFoundError as exc:
        raise NotFound(f"the content of file {record.id} is missing from the file storage") from exc
    headers = {
        "content-length": str(record.bytes),
        # attachment + nosniff: an uploaded HTML or SVG file must not run as a page of this server's origin.
        "content-disposition": f"attachment; filename*=UTF-8''{quote(record.file_name, safe='')}",
        "x-content-type-options": "nosniff",
        errors.LOGID_HEADER: logid,
    }
    return StreamingResponse(chunks, media_type=record.content_type, headers=headers)


def file_routes() -> list[Route]:
    return [
        Route("/v1/files/upload", upload_file, methods=["POST"]),
        Route("/v1/files/retrieve", retrieve_file, methods=["GET"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
    ]
