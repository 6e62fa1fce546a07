"""The open API's request bodies, validated with pydantic; a bad field is a 4000 error naming it."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from starlette.requests import Request

from knotflow.errors import BadRequest
from knotflow.service.runs import DEFAULT_CONNECTOR, RunRequest, check_ext, parse_parameters

MAX_ID_LENGTH = 32  # the width of the id columns (connector ids: Coze's are int64 numbers)
MAX_VERSION_LENGTH = 64


def _id_text(value: Any) -> Any:
    """Ids as text (Coze ids are numeric strings; some clients send them as numbers), at most the width the
    database stores them in: a longer one is no id of ours, and refused instead of stored cut or failing."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and len(value) > MAX_ID_LENGTH:
        raise ValueError(f"an id is at most {MAX_ID_LENGTH} characters")
    return value


def _version_text(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VERSION_LENGTH:
        raise ValueError(f"a version is at most {MAX_VERSION_LENGTH} characters")
    return value


class RunBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workflow_id: str
    parameters: Any = None
    bot_id: str | None = None
    app_id: str | None = None
    project_id: str | None = None
    ext: Any = None
    workflow_version: str | None = None
    version: str | None = None
    connector_id: str | None = None
    is_async: bool = False

    _ids = field_validator("workflow_id", "bot_id", "app_id", "project_id", "connector_id", mode="before")(
        _id_text
    )
    _versions = field_validator("workflow_version", "version", mode="before")(_version_text)

    def to_request(self) -> RunRequest:
        if not self.workflow_id.strip():
            raise BadRequest("workflow_id is required")
        return RunRequest(
            workflow_id=self.workflow_id.strip(),
            parameters=parse_parameters(self.parameters),
            bot_id=self.bot_id or None,
            app_id=self.app_id or self.project_id or None,
            ext=check_ext(self.ext),
            workflow_version=self.workflow_version or self.version or None,
            connector_id=self.connector_id or DEFAULT_CONNECTOR,
        )


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workflow_id: str
    event_id: str
    resume_data: str = ""
    interrupt_type: int
    connector_id: str | None = None

    _ids = field_validator("workflow_id", "connector_id", mode="before")(_id_text)


class CancelBody(BaseModel):
    """knotflow's own `POST /v1/workflow/cancel` (cozepy has no such call)."""

    model_config = ConfigDict(extra="ignore")

    workflow_id: str
    execute_id: str
    connector_id: str | None = None

    _ids = field_validator("workflow_id", "execute_id", "connector_id", mode="before")(_id_text)


def int_query(request: Request, name: str, default: int, lowest: int, highest: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"{name} must be an integer") from exc
    if not lowest <= value <= highest:
        raise BadRequest(f"{name} must be between {lowest} and {highest}")
    return value


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        raise BadRequest(f"invalid request parameter '{where}': {first.get('msg', 'invalid')}") from exc
