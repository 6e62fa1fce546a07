"""What the platform nodes reach in a run: the conversations, the tables and the variables of the run's app or
bot, bound to the run's space, connector and connector uid (and, in a chat, to the chat's own conversation)."""

from __future__ import annotations

from knotflow.contract import Conversations, Database
from knotflow.service.conversations import RunConversation, RunConversations
from knotflow.service.databases import DatabaseService
from knotflow.service.message_content import MessageContent
from knotflow.service.owners import Owners, run_owner
from knotflow.service.variables import RunVariables, VariableService
from knotflow.store.records import Run, Token
from knotflow.store.repository import Store


class PlatformServices:
    def __init__(self, store: Store, content: MessageContent, databases: DatabaseService, owners: Owners,
                 variables: VariableService) -> None:
        self.store = store
        self.content = content
        self.databases = databases
        self.owners = owners
        self.variables = variables

    async def check_owner(self, token: Token, bot_id: str | None, app_id: str | None) -> None:
        """A run request's bot or app exists in a space the token may use (else 4000 naming it)."""
        await run_owner(self.owners, token, bot_id, app_id)

    def for_run(self, run: Run, chat: RunConversation | None = None) -> tuple[Conversations, Database]:
        conversations = RunConversations(self.store, self.content, space_id=run.space_id, app_id=run.app_id,
                                         bot_id=run.bot_id, connector_id=run.connector_id, chat=chat)
        return conversations, self.databases.for_run(run)

    async def variables_for_run(self, run: Run, chat: RunConversation | None = None) -> RunVariables:
        return await self.variables.for_run(run, chat.conversation_id if chat is not None else None)
