"""What every request handler shares, built once at start-up, and how a handler reaches it."""

from __future__ import annotations

from starlette.requests import Request

from knotflow.api.auth import Authenticator
from knotflow.config import Settings
from knotflow.files.storage import FileStorage, LocalFileStorage
from knotflow.service.runs import RunService
from knotflow.store.repository import Store


class AppState:
    """Everything a request handler needs, built once at start-up."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.runs = RunService(store, settings)
        self.auth = Authenticator(store)
        self.files: FileStorage = LocalFileStorage(settings.data_dir / "files")

    def debug_url(self, execute_id: str, space_id: str, workflow_id: str) -> str:
        return (
            f"{self.settings.base_url()}/work_flow?execute_id={execute_id}&space_id={space_id}"
            f"&workflow_id={workflow_id}&execute_mode=2"
        )


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.knotflow
    return state
