"""What the platform nodes reach in a run: the conversations and the tables of the run's app or bot, bound to
the run's space, connector and connector uid (and, in a chat, to the chat's own conversation)."""

from __future__ import annotations

from knotflow.contract import Conversations, Database
from knotflow.service.conversations import RunConversation, RunConversations
from knotflow.service.databases import DatabaseService
from knotflow.service.message_content import MessageContent
from knotflow.store.records import Run
from knotflow.store.repository import Store


class PlatformServices:
    def __init__(self, store: Store, content: MessageContent, databases: DatabaseService) -> None:
        self.store = store
        self.content = content
        self.databases = databases

    def for_run(self, run: Run, chat: RunConversation | None = None) -> tuple[Conversations, Database]:
        conversations = RunConversations(self.store, self.content, space_id=run.space_id, app_id=run.app_id,
                                         bot_id=run.bot_id, connector_id=run.connector_id, chat=chat)
        return conversations, self.databases.for_run(run)
