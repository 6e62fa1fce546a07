"""The composition root: the one place that builds knotflow's parts from the settings and owns them.

`knotflow serve`, `knotflow run` and the tests all start the application the same way:

    async with Container(settings) as app:
        handle = await app.runs.begin(...)

`start()` connects the store and, with KNOTFLOW_REDIS_URL, Redis (`scale.py`: run events, signals, limits,
idempotency keys, the async-run queue; their in-process forms without it), reads the models file, builds the file
services, the outbound HTTP client, the Code node's runner (its sandboxes start on first use), the run recorder and
the services, removes uploads a crash left behind and starts the sweeper; `close()` stops them in reverse order.
With `background=False` (the catalog commands of the CLI) nothing runs in the background: no recorder loop, no
sweeper, no upload clean-up, so administering the catalog never touches runs another process owns.
"""

from __future__ import annotations

import logging
from types import TracebackType

from knotflow.config import Settings
from knotflow.contract import NodeTypes
from knotflow.errors import KnotflowError
from knotflow.files.fetch import UrlFetcher
from knotflow.files.links import FileLinks
from knotflow.files.storage import FileStorage, LocalFileStorage
from knotflow.models.registry import ReloadableModels
from knotflow.nodes import NODE_TYPES
from knotflow.nodes.code import with_egress
from knotflow.outbound.http import GuardedHttpClient
from knotflow.service.chat import ChatService
from knotflow.service.code import CodeService
from knotflow.service.conversations import ConversationService
from knotflow.service.databases import DatabaseService
from knotflow.service.file_parameters import FileParameters
from knotflow.service.leases import RunLeases
from knotflow.service.message_content import MessageContent
from knotflow.service.owners import Registry
from knotflow.service.platform import PlatformServices
from knotflow.service.recorder import RunRecorder
from knotflow.service.run_control import RunControl
from knotflow.service.runs import RunService
from knotflow.service.scale import Scale
from knotflow.service.sweeper import Sweeper
from knotflow.service.variables import VariableService
from knotflow.store.migrate import upgrade
from knotflow.store.repository import Store

log = logging.getLogger(__name__)


class Container:
    """Everything one knotflow process runs with. Attributes are set by `start()`."""

    store: Store
    models: ReloadableModels
    file_links: FileLinks
    file_storage: FileStorage
    file_fetcher: UrlFetcher
    http_client: GuardedHttpClient
    code: CodeService
    file_parameters: FileParameters
    recorder: RunRecorder
    leases: RunLeases
    runs: RunService
    scale: Scale
    control: RunControl
    chat: ChatService
    conversations: ConversationService
    databases: DatabaseService
    owners: Registry
    variables: VariableService
    sweeper: Sweeper

    def __init__(self, settings: Settings, *, node_types: NodeTypes = NODE_TYPES, migrate: bool = False,
                 background: bool = True) -> None:
        self.settings = settings
        # With code egress the Code node's Python code may import httpx too (it is checked at publish).
        self.node_types = with_egress(node_types) if settings.code_egress else node_types
        self.migrate = migrate
        self.background = background
        self._started = False

    async def start(self) -> None:
        settings = self.settings
        url = settings.resolved_database_url()
        if self.migrate:
            upgrade(url)
        self.store = await Store.open(url)
        self.scale = Scale.for_settings(settings)
        try:
            await self.scale.start(self.background)
            self.models = ReloadableModels(settings.resolved_models_file())
            self.reload_models()
            self.file_links = FileLinks.from_settings(settings)
            self.file_storage = LocalFileStorage(settings.data_dir / "files")
            self.file_fetcher = UrlFetcher(settings, self.file_links, self.file_storage, self.store)
            self.http_client = GuardedHttpClient(settings)
            self.code = CodeService(settings)  # its sandboxes start with the first Code node call
            self.file_parameters = FileParameters(self.store, self.file_links)
            self.recorder = RunRecorder(self.store)
            self.owners = Registry(self.store)
            self.conversations = ConversationService(self.store, self.owners)
            self.databases = DatabaseService(self.store, self.owners)
            self.variables = VariableService(self.store, self.owners)
            content = MessageContent(self.store, self.file_links)
            platform = PlatformServices(self.store, content, self.databases, self.owners, self.variables)
            self.leases = RunLeases(self.store, settings.run_lease)
            self.runs = RunService(self.store, settings, recorder=self.recorder, leases=self.leases,
                                   models=self.models,
                                   files=self.file_fetcher, file_parameters=self.file_parameters,
                                   node_types=self.node_types, http=self.http_client, code=self.code,
                                   platform=platform, scale=self.scale)
            self.control = RunControl(self.runs, self.store, settings, self.scale)
            self.chat = ChatService(self.runs, self.store, content)
            self.sweeper = Sweeper(self.store, settings, self.control.end_lapsed)
            if self.background:
                await self.file_storage.remove_abandoned_uploads()
                self.recorder.start()
                self.leases.start()
                await self.sweeper.start()
        except BaseException:
            await self.scale.close()
            await self.store.close()
            raise
        self._started = True

    def reload_models(self) -> None:
        """Read the models file again (at start and on SIGHUP); a broken file keeps the previous registry."""
        try:
            registry = self.models.reload()
        except KnotflowError as exc:
            log.error("models file not reloaded: %s", exc.message)
            return
        log.info("models: %d configured from %s", len(registry), registry.source)

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        await self.sweeper.close()
        await self.runs.close()  # background runs record their end through the recorder, closed next
        await self.chat.close()
        await self.recorder.close()
        await self.leases.close()
        await self.scale.close()
        await self.models.aclose()
        await self.file_fetcher.aclose()
        await self.http_client.aclose()
        await self.code.close()
        await self.store.close()

    async def __aenter__(self) -> Container:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()
