"""Conversations and messages: cozepy's open API on them (`ConversationService`), apps' conversation templates,
and what the conversation and message nodes reach in a run (`RunConversations`).

The store is the one chatflows use: a conversation created here can be chatted in, and a chat's messages are
listed here. Conversations belong to a space, a bot or app (cozepy's `bot_id`; "" for none) and a connector.
The open API reaches a conversation by id when the token may use its space and the request's connector
(default 1024, `connector_id` in the query otherwise) is the conversation's, as chats and run histories do.

A clear starts a new section (Coze's `last_section_id`): messages stay and are still listed, but chats and the
history node read only the current section. A deletion is for good: the conversation, its messages and any name
it was bound to are gone for every reader.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from knotflow.contract import ContentPart, ConversationMessage, ConversationMessagePage
from knotflow.errors import BadRequest, ConversationNotFound, KnotflowError, MessageNotFound
from knotflow.ids import new_id
from knotflow.service.access import PERMISSION_READ, check_permission, reachable_conversation, token_space
from knotflow.service.message_content import MessageContent, check_content
from knotflow.service.owners import APP, BOT, Owners, check_owner_id, require_owner
from knotflow.store.records import PERMISSION_RUN, ChatMessage, Conversation, ConversationTemplate, Token
from knotflow.store.repository import ConversationScope, Store

USER, ASSISTANT = "user", "assistant"
QUESTION, ANSWER = "question", "answer"
DEFAULT_CONVERSATION_NAME = "Default"  # every app's template (Coze Studio creates it with the app)
MAX_CREATE_MESSAGES = 16  # cozepy's conversations.create: at most 16 messages
MAX_META_PAIRS, MAX_META_KEY, MAX_META_VALUE = 16, 64, 512
MAX_PAGE = 50  # conversations per page, messages per page
MAX_NAME = 255


class MetaDataTooLarge(KnotflowError):
    """Coze's 4003: meta_data exceeds its limits."""

    code = 4003


class TooManyMessages(KnotflowError):
    """Coze's 4004: conversations.create got more than 16 messages."""

    code = 4004


@dataclass(slots=True)
class NewMessage:
    """A message the caller sends (cozepy's Message: role, content, content_type, meta_data)."""

    role: str
    content: str
    content_type: str = "text"
    meta_data: dict[str, str] = field(default_factory=dict)


def check_meta_data(meta_data: dict[str, str] | None, label: str = "meta_data") -> dict[str, str]:
    meta_data = meta_data or {}
    if len(meta_data) > MAX_META_PAIRS:
        raise MetaDataTooLarge(f"{label} holds at most {MAX_META_PAIRS} pairs")
    for key, value in meta_data.items():
        if not 1 <= len(key) <= MAX_META_KEY:
            raise MetaDataTooLarge(f"{label} keys are 1 to {MAX_META_KEY} characters: {key!r}")
        if not 1 <= len(value) <= MAX_META_VALUE:
            raise MetaDataTooLarge(f"{label}[{key!r}] is 1 to {MAX_META_VALUE} characters")
    return dict(meta_data)


def check_message(message: NewMessage, label: str) -> None:
    if message.role not in (USER, ASSISTANT):
        raise BadRequest(f"{label}.role must be 'user' or 'assistant'")
    check_content(message.content_type, message.content, label)
    check_meta_data(message.meta_data, f"{label}.meta_data")


def rounds_of(conversation: Conversation, messages: list[NewMessage], at: float) -> list[ChatMessage]:
    """Messages the caller hands over, as rounds of the conversation: each user message opens a round, an
    assistant message joins the round before it (one before any user message is dropped, as Coze does)."""
    stored: list[ChatMessage] = []
    chat_id = ""
    for message in messages:
        if message.role == USER:
            chat_id = new_id()
        elif not chat_id:
            continue
        stored.append(ChatMessage(id=new_id(), conversation_id=conversation.id, chat_id=chat_id, role=message.role,
                                  type=QUESTION if message.role == USER else ANSWER, content=message.content,
                                  content_type=message.content_type, created_at=at, meta_data=message.meta_data))
    return stored


@dataclass(slots=True)
class ListedMessages:
    messages: list[ChatMessage]
    has_more: bool

    @property
    def first_id(self) -> str:
        return self.messages[0].id if self.messages else "0"

    @property
    def last_id(self) -> str:
        return self.messages[-1].id if self.messages else "0"


class ConversationService:
    def __init__(self, store: Store, owners: Owners) -> None:
        self.store = store
        self.owners = owners

    # --- conversations ------------------------------------------------------------------------------------
    async def create(self, token: Token, connector_id: str, *, bot_id: str = "", name: str = "",
                     meta_data: dict[str, str] | None = None,
                     messages: list[NewMessage] | None = None) -> Conversation:
        """`conversations.create`: a new conversation in the token's first space, for the bot (if any), with
        the given messages as its first rounds."""
        check_permission(token, PERMISSION_RUN)
        messages = messages or []
        if len(messages) > MAX_CREATE_MESSAGES:
            raise TooManyMessages(f"messages holds at most {MAX_CREATE_MESSAGES} messages")
        for index, message in enumerate(messages):
            check_message(message, f"messages[{index}]")
        meta_data = check_meta_data(meta_data)
        if len(name) > MAX_NAME:
            raise BadRequest(f"name is at most {MAX_NAME} characters")
        if bot_id:
            bot_id = await require_owner(self.owners, BOT, bot_id, token)
        space_id = await token_space(self.store, token)
        conversation = await self.store.create_conversation(space_id, connector_id, name=name, meta_data=meta_data,
                                                            creator_id=token.id, bot_id=bot_id)
        await self.store.add_messages(rounds_of(conversation, messages, time.time()))
        return conversation

    async def get(self, token: Token, conversation_id: str, connector_id: str, *,
                  permission: str = PERMISSION_READ) -> Conversation:
        """A conversation the token may read (or, with PERMISSION_RUN, change), by id."""
        check_permission(token, permission)
        conversation = await self.store.get_conversation(conversation_id) if conversation_id else None
        return reachable_conversation(token, conversation, conversation_id, connector_id=connector_id)

    async def list_conversations(self, token: Token, bot_id: str, connector_id: str, *, page_num: int, page_size: int,
                   ascending: bool = False) -> tuple[list[Conversation], bool]:
        """`conversations.list`: the bot's conversations in the token's spaces and the connector, newest first;
        pages are numbered from 1 and hold 1 to 50 conversations."""
        check_permission(token, PERMISSION_READ)
        if not bot_id:
            raise BadRequest("bot_id is required")
        bot_id = await require_owner(self.owners, BOT, bot_id, token)
        if page_num < 1:
            raise BadRequest("page_num starts at 1")
        if not 1 <= page_size <= MAX_PAGE:
            raise BadRequest(f"page_size is 1 to {MAX_PAGE}")
        return await self.store.list_conversations(token.space_ids, bot_id, connector_id,
                                                   offset=(page_num - 1) * page_size, limit=page_size,
                                                   ascending=ascending)

    async def rename(self, token: Token, conversation_id: str, name: str | None, connector_id: str) -> Conversation:
        """`conversations.update`: a new name (an empty or missing one leaves it as it is, as Coze Studio)."""
        conversation = await self.get(token, conversation_id, connector_id, permission=PERMISSION_RUN)
        if not name:
            return conversation
        if len(name) > MAX_NAME:
            raise BadRequest(f"name is at most {MAX_NAME} characters")
        renamed = await self.store.rename_conversation(conversation.id, name)
        if renamed is None:
            raise ConversationNotFound(f"conversation {conversation_id} does not exist")
        return renamed

    async def delete(self, token: Token, conversation_id: str, connector_id: str) -> None:
        conversation = await self.get(token, conversation_id, connector_id, permission=PERMISSION_RUN)
        if not await self.store.delete_conversation(conversation.id):
            raise ConversationNotFound(f"conversation {conversation_id} does not exist")

    async def clear(self, token: Token, conversation_id: str, connector_id: str) -> str:
        """`conversations.clear`: a new section; returns its id."""
        conversation = await self.get(token, conversation_id, connector_id, permission=PERMISSION_RUN)
        section_id = await self.store.new_section(conversation.id)
        if section_id is None:
            raise ConversationNotFound(f"conversation {conversation_id} does not exist")
        return section_id

    # --- messages -----------------------------------------------------------------------------------------
    async def add_message(self, token: Token, conversation_id: str, message: NewMessage,
                          connector_id: str) -> ChatMessage:
        """`messages.create`: a user's message opens a new round; an assistant's joins the current section's
        latest round (a new one if there is none)."""
        check_message(message, "message")
        conversation = await self.get(token, conversation_id, connector_id, permission=PERMISSION_RUN)
        chat_id = None
        if message.role == ASSISTANT:
            chat_id = await self.store.latest_round(conversation.id, conversation.section_id)
        stored = ChatMessage(id=new_id(), conversation_id=conversation.id, chat_id=chat_id or new_id(),
                             role=message.role, type=QUESTION if message.role == USER else ANSWER,
                             content=message.content, content_type=message.content_type, created_at=time.time(),
                             section_id=conversation.section_id, bot_id=conversation.bot_id,
                             meta_data=message.meta_data)
        stored.updated_at = stored.created_at
        await self.store.add_messages([stored])
        return stored

    async def get_message(self, token: Token, conversation_id: str, message_id: str, connector_id: str, *,
                          permission: str = PERMISSION_READ) -> ChatMessage:
        conversation = await self.get(token, conversation_id, connector_id, permission=permission)
        message = await self.store.get_message(message_id) if message_id else None
        if message is None or message.conversation_id != conversation.id:
            raise MessageNotFound(f"message {message_id} does not exist in conversation {conversation_id}")
        return message

    async def edit_message(self, token: Token, conversation_id: str, message_id: str, connector_id: str, *,
                           content: str | None, content_type: str | None,
                           meta_data: dict[str, str] | None) -> ChatMessage:
        """`messages.update`: what is given replaces what was (meta_data keys are added, replacing equal ones)."""
        message = await self.get_message(token, conversation_id, message_id, connector_id, permission=PERMISSION_RUN)
        check_content(content_type or message.content_type, message.content if content is None else content,
                      "message")
        if meta_data is not None:
            check_meta_data({**message.meta_data, **meta_data})
        edited = await self.store.edit_message(message.id, content=content, content_type=content_type,
                                               meta_data=meta_data)
        if edited is None:
            raise MessageNotFound(f"message {message_id} does not exist in conversation {conversation_id}")
        return edited

    async def delete_message(self, token: Token, conversation_id: str, message_id: str,
                             connector_id: str) -> ChatMessage:
        message = await self.get_message(token, conversation_id, message_id, connector_id, permission=PERMISSION_RUN)
        deleted = await self.store.delete_message(message.conversation_id, message.id)
        if deleted is None:
            raise MessageNotFound(f"message {message_id} does not exist in conversation {conversation_id}")
        return deleted

    async def list_messages(self, token: Token, conversation_id: str, connector_id: str, *, order: str = "desc",
                            chat_id: str | None = None, before_id: str | None = None, after_id: str | None = None,
                            limit: int = MAX_PAGE) -> ListedMessages:
        """`messages.list`: questions and answers in `order` (by time, "desc" newest first). `after_id`: the
        ones after that message in this order; `before_id`: the page just before it, still in this order.
        `has_more`: more lie beyond the page in the direction it went."""
        if order not in ("asc", "desc"):
            raise BadRequest("order must be 'asc' or 'desc'")
        if before_id and after_id:
            raise BadRequest("before_id and after_id cannot be set at the same time")
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit is 1 to {MAX_PAGE}")
        conversation = await self.get(token, conversation_id, connector_id)
        newest_first = order == "desc"
        backwards = bool(before_id)  # walking against the order, towards `before_id`'s side
        page = await self.store.page_messages(conversation.id, limit=limit, older=newest_first != backwards,
                                              cursor=before_id or after_id or None, chat_id=chat_id or None)
        if page is None:
            raise MessageNotFound(f"message {before_id or after_id} does not exist in conversation "
                                  f"{conversation_id}")
        messages = page.messages[::-1] if backwards else page.messages
        return ListedMessages(messages, page.has_more)

    # --- templates ----------------------------------------------------------------------------------------
    async def add_template(self, app_id: str, name: str) -> ConversationTemplate:
        """A conversation template of the app (`knotflow app conversation add`)."""
        app_id = await require_owner(self.owners, APP, app_id)
        name = name.strip()
        if not name or len(name) > MAX_NAME:
            raise BadRequest(f"a conversation name is 1 to {MAX_NAME} characters")
        if name == DEFAULT_CONVERSATION_NAME:
            raise BadRequest(f"every app already has the conversation {DEFAULT_CONVERSATION_NAME!r}")
        template = await self.store.add_template(app_id, name)
        if template is None:
            raise BadRequest(f"app {app_id} already has the conversation {name!r}")
        return template

    async def template_names(self, app_id: str) -> list[str]:
        """The app's conversation templates: "Default" first, then the added ones in the order they were added."""
        app_id = check_owner_id(APP, app_id)
        return [DEFAULT_CONVERSATION_NAME] + [template.name for template in await self.store.templates(app_id)]


@dataclass(slots=True)
class RunConversation:
    """A chat's own conversation, as its run sees it: the conversation, its section, and the chat's round."""

    conversation_id: str
    section_id: str
    round_id: str
    user_message: list[ContentPart] | None = None  # the chat's user message, when it is multimodal


class RunConversations:
    """`knotflow.contract.Conversations` for one run: the run's app or bot, space and connector; a chat's own
    conversation, section and round (Coze Studio's ExeCfg ConversationID, SectionID, RoundID, InitRoundID)."""

    def __init__(self, store: Store, content: MessageContent, *, space_id: str, app_id: str, bot_id: str,
                 connector_id: str, chat: RunConversation | None = None) -> None:
        self.store = store
        self.content = content
        self.app_id = app_id
        self.bot_id = bot_id
        self.scope = ConversationScope(space_id, app_id or bot_id, connector_id)
        self.conversation_id = chat.conversation_id if chat is not None else None
        self._section = chat.section_id if chat is not None else ""
        self._round = chat.round_id if chat is not None else ""
        self._init_round = self._round  # the chat's own round: what the history of this run leaves out

    async def is_template(self, name: str) -> bool:
        if not self.app_id:
            return False
        return name in await self._templates()

    async def _templates(self) -> list[str]:
        return [DEFAULT_CONVERSATION_NAME] + [t.name for t in await self.store.templates(self.app_id)]

    async def find(self, name: str) -> str | None:
        conversation = await self.store.conversation_for_name(self.scope, name)
        return None if conversation is None else conversation.id

    async def get_or_create(self, name: str) -> tuple[str, bool]:
        conversation, existed = await self.store.name_conversation(self.scope, name)
        assert conversation is not None  # only a renewal finds nothing
        return conversation.id, existed

    async def rename(self, name: str, new_name: str) -> tuple[str, str | None]:
        return await self.store.rename_name(self.scope, name, new_name)

    async def forget(self, name: str) -> bool:
        return await self.store.forget_name(self.scope, name)

    async def names(self) -> list[tuple[str, str]]:
        templates = await self._templates() if self.app_id else []
        bound = dict(await self.store.names(self.scope))
        fixed = [(name, bound.get(name, "0")) for name in templates]
        return fixed + [(name, conversation_id) for name, conversation_id in bound.items() if name not in templates]

    def _own(self, conversation_id: str) -> bool:
        return self.conversation_id is not None and conversation_id == self.conversation_id

    async def history(self, conversation_id: str, rounds: int | None) -> list[ConversationMessage]:
        section = self._section if self._own(conversation_id) else None
        found = await self.store.recent_rounds(conversation_id, rounds, section_id=section,
                                               before_round=self._init_round or None)
        return [await self._shown(message) for round_ in found for message in round_]

    async def clear(self, conversation_id: str) -> bool:
        section_id = await self.store.new_section(conversation_id)
        if section_id is None:
            return False
        if self._own(conversation_id):
            self._section = section_id  # the rest of the chat's run writes and reads the new section
        return True

    async def messages(self, conversation_id: str, *, limit: int, before_id: str = "",
                       after_id: str = "") -> ConversationMessagePage | None:
        page = await self.store.page_messages(conversation_id, limit=limit, older=not before_id,
                                              cursor=before_id or after_id or None)
        if page is None:
            return None
        return ConversationMessagePage([await self._shown(m) for m in page.messages], page.has_more)

    async def add_message(self, conversation_id: str, role: str, content: str) -> str | None:
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            return None
        own = self._own(conversation_id)
        section = self._section if own and self._section else conversation.section_id
        if role == USER:
            round_id = new_id()
            if own:
                self._round = round_id  # the chat's answers from now on belong to this round
        elif own:
            if not self._round:
                return None
            round_id = self._round
        else:
            round_id = await self.store.latest_round(conversation_id, section) or new_id()
        now = time.time()
        message = ChatMessage(id=new_id(), conversation_id=conversation_id, chat_id=round_id, role=role,
                              type=QUESTION if role == USER else ANSWER, content=content, content_type="text",
                              created_at=now, section_id=section, bot_id=self.app_id or self.bot_id, updated_at=now)
        await self.store.add_messages([message])
        return message.id

    async def message(self, message_id: str) -> ConversationMessage | None:
        message = await self.store.get_message(message_id)
        return None if message is None else await self._shown(message)

    async def edit_message(self, conversation_id: str, message_id: str, content: str) -> bool:
        message = await self.store.get_message(message_id)
        if message is None or message.conversation_id != conversation_id:
            return False
        return await self.store.edit_message(message_id, content=content) is not None

    async def delete_message(self, conversation_id: str, message_id: str) -> bool:
        return await self.store.delete_message(conversation_id, message_id) is not None

    async def _shown(self, message: ChatMessage) -> ConversationMessage:
        return ConversationMessage(id=message.id, role=message.role, content_type=message.content_type,
                                   content=await self.content.text(message), conversation_id=message.conversation_id)
