"""cozepy's `variables.retrieve` / `variables.update`: a bot's or app's user variables for one user
(`GET` / `PUT /v1/variables`, Coze's shapes).

The user is `connector_id` (default 1024, the API) and `connector_uid` (what runs pass as `ext.user_id`; none is
the connector's anonymous user, as for runs). Values are text as Coze keeps them: a string as it is, anything
else as JSON. A value never set reads its declared default, with `create_time` and `update_time` 0.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from knotflow.api import errors
from knotflow.api.requests import MAX_ID_LENGTH, _id_text
from knotflow.api.state import AppState, open_api
from knotflow.errors import BadRequest
from knotflow.service.owners import APP, BOT
from knotflow.service.runs import DEFAULT_CONNECTOR, MAX_EXT_LENGTH

MAX_ITEMS = 100  # keywords or values in one call


class VariableItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    keyword: str
    value: str


class VariablesBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    app_id: str | None = None
    bot_id: str | None = None
    connector_id: str | None = None
    connector_uid: str | None = None
    data: list[VariableItem]

    _ids = field_validator("app_id", "bot_id", "connector_id", mode="before")(_id_text)


def _owner(bot_id: str | None, app_id: str | None) -> tuple[str, str]:
    if bot_id and app_id:
        raise BadRequest("bot_id and app_id cannot be set at the same time")
    if not (bot_id or app_id):
        raise BadRequest("either app_id or bot_id is required")
    return (BOT, bot_id) if bot_id else (APP, app_id or "")


def _connector(connector_id: str | None) -> str:
    if connector_id and len(connector_id) > MAX_ID_LENGTH:
        raise BadRequest(f"connector_id is at most {MAX_ID_LENGTH} characters")
    return connector_id or DEFAULT_CONNECTOR


def _user(connector_uid: str | None) -> str:
    uid = connector_uid or ""
    if len(uid) > MAX_EXT_LENGTH:
        raise BadRequest(f"connector_uid is at most {MAX_EXT_LENGTH} characters")
    return uid


@open_api
async def retrieve_variables(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    query = request.query_params
    kind, owner_id = _owner(query.get("bot_id"), query.get("app_id"))
    keywords = [keyword.strip() for keyword in (query.get("keywords") or "").split(",") if keyword.strip()]
    if len(keywords) > MAX_ITEMS:
        raise BadRequest(f"keywords names at most {MAX_ITEMS} variables")
    values = await state.app.variables.user_values(token, kind, owner_id, _connector(query.get("connector_id")),
                                                   _user(query.get("connector_uid")), keywords)
    items = [{"keyword": v.name, "value": v.value, "create_time": v.created_at, "update_time": v.updated_at}
             for v in values]
    return errors.ok({"items": items}, logid)


@open_api
async def update_variables(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await state.json_body(request, VariablesBody)
    kind, owner_id = _owner(body.bot_id, body.app_id)
    if len(body.data) > MAX_ITEMS:
        raise BadRequest(f"data holds at most {MAX_ITEMS} variables")
    await state.app.variables.set_user_values(token, kind, owner_id, _connector(body.connector_id),
                                              _user(body.connector_uid),
                                              [(item.keyword, item.value) for item in body.data])
    return errors.ok({}, logid)


def variable_routes() -> list[Route]:
    return [
        Route("/v1/variables", retrieve_variables, methods=["GET"]),
        Route("/v1/variables", update_variables, methods=["PUT"]),
    ]
