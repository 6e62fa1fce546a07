"""Chatflows end to end: cozepy `workflows.chat.stream` and `conversations.create` against the live server and
the fake model server; the LLM node's chat history is checked on the requests the fake model recorded."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cozepy import ChatEventType, Coze, CozeAPIError, Message, TokenAuth

from knotflow.config import Settings
from knotflow.models.registry import load_registry
from knotflow.service import catalog
from knotflow.service.chat import CHAT_LEASE
from knotflow.store.records import ChatMessage, Conversation
from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.api.test_llm_stream import llm_live
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes.test_intent import INTENT_ID, intent_node
from tests.nodes.test_llm import LLM_ID, MODEL_TYPE, llm_node
from tests.nodes.test_question import QA, qa_node

__all__ = ["llm_live"]  # the fixture, imported so pytest finds it here

SYSTEM = "You are terse."


def chat_start() -> dict[str, Any]:
    return c.start({"name": "USER_INPUT", "type": "string", "required": False},
                   {"name": "CONVERSATION_NAME", "type": "string", "required": False})


def history_llm(enabled: bool = True, rounds: int = 3) -> dict[str, Any]:
    node = llm_node(prompt="Q: {{input}}", system=SYSTEM)
    for param in node["data"]["inputs"]["llmParam"]:
        if param["name"] == "enableChatHistory":
            param["input"]["value"]["content"] = enabled
        elif param["name"] == "chatHistoryRound":
            param["input"]["value"]["content"] = str(rounds)
    node["data"]["inputs"]["inputParameters"] = [c.param("input", c.ref("100001", "USER_INPUT"))]
    return node


def chatflow(llm: dict[str, Any]) -> dict[str, Any]:
    return c.canvas([chat_start(), llm, c.end_answer("{{answer}}", streaming=True, answer=c.ref(LLM_ID, "output"))],
                    [c.edge("100001", LLM_ID), c.edge(LLM_ID, "900001")])


def publish(live: LiveServer, canvas: dict[str, Any], chatflow: bool = True, space_id: str | None = None) -> str:
    async def work(store: Store) -> str:
        models = load_registry(live.settings.resolved_models_file())
        workflow, _ = await catalog.import_workflow(store, canvas, publish=True, models=models, chatflow=chatflow,
                                                    space_id=space_id)
        return workflow.id

    return str(live.call(work))


def chat(coze: Coze, workflow_id: str, text: str, conversation_id: str | None = None,
         **options: Any) -> list[Any]:
    question = Message.build_user_question_text(text)
    return list(coze.workflows.chat.stream(workflow_id=workflow_id, additional_messages=[question],
                                           conversation_id=conversation_id, **options))


def answer_of(events: list[Any]) -> str:
    completed = [e.message for e in events if e.event == ChatEventType.CONVERSATION_MESSAGE_COMPLETED]
    assert len(completed) == 1
    return str(completed[0].content)


def test_two_turns_send_the_first_round_as_history(llm_live: LiveServer, fake_model: FakeModelServer) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    workflow_id = publish(llm_live, chatflow(history_llm()))
    fake_model.script(Reply(content=["Hello", ", Ann."], usage=(12, 3)))
    first = chat(coze, workflow_id, "I am Ann")
    kinds = [e.event for e in first]
    assert kinds == [ChatEventType.CONVERSATION_CHAT_CREATED, ChatEventType.CONVERSATION_CHAT_IN_PROGRESS,
                     ChatEventType.CONVERSATION_MESSAGE_DELTA, ChatEventType.CONVERSATION_MESSAGE_DELTA,
                     ChatEventType.CONVERSATION_MESSAGE_COMPLETED, ChatEventType.CONVERSATION_CHAT_COMPLETED]
    deltas = [e.message.content for e in first if e.event == ChatEventType.CONVERSATION_MESSAGE_DELTA]
    assert deltas == ["Hello", ", Ann."] and answer_of(first) == "Hello, Ann."
    done = first[-1].chat
    assert done.status == "completed" and done.usage is not None and done.usage.token_count == 15
    conversation_id = done.conversation_id
    assert fake_model.requests[-1]["messages"] == [{"role": "system", "content": SYSTEM},
                                                   {"role": "user", "content": "Q: I am Ann"}]

    fake_model.script(Reply(content="Ann.", usage=(20, 1)))
    second = chat(coze, workflow_id, "Who am I?", conversation_id)
    assert answer_of(second) == "Ann." and second[-1].chat.conversation_id == conversation_id
    assert fake_model.requests[-1]["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "I am Ann"},
        {"role": "assistant", "content": "Hello, Ann."},
        {"role": "user", "content": "Q: Who am I?"},
    ]


def test_chat_history_round_limits_the_rounds_sent(llm_live: LiveServer, fake_model: FakeModelServer) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    workflow_id = publish(llm_live, chatflow(history_llm(rounds=1)))
    conversation = coze.conversations.create()
    for number in range(3):
        fake_model.script(Reply(content=f"a{number}"))
        chat(coze, workflow_id, f"q{number}", conversation.id)
    sent = fake_model.requests[-1]["messages"]
    assert sent[1:] == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                        {"role": "user", "content": "Q: q2"}]

    off = publish(llm_live, chatflow(history_llm(enabled=False)))
    fake_model.script(Reply(content="x"))
    chat(coze, off, "q3", conversation.id)
    assert fake_model.requests[-1]["messages"][1:] == [{"role": "user", "content": "Q: q3"}]


def test_conversation_of_another_space_or_connector_is_refused(llm_live: LiveServer,
                                                               fake_model: FakeModelServer) -> None:
    other_space = llm_live.space("7000000000000000001")
    both = Coze(auth=TokenAuth(llm_live.token(spaces=[other_space, llm_live.space("7000000000000000002")])),
                base_url=llm_live.base_url)
    elsewhere = both.conversations.create()  # lands in the token's first space
    workflow_id = publish(llm_live, chatflow(history_llm()), space_id="7000000000000000002")
    with pytest.raises(CozeAPIError) as refused:
        chat(both, workflow_id, "hi", elsewhere.id)
    assert refused.value.code == 4200
    stranger = Coze(auth=TokenAuth(llm_live.token(spaces=[other_space])), base_url=llm_live.base_url)
    with pytest.raises(CozeAPIError) as denied:
        chat(stranger, workflow_id, "hi")
    assert denied.value.code == 4200  # a workflow of another space is reported like an unknown one

    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    on_web = coze.conversations.create(connector_id="999")
    with pytest.raises(CozeAPIError) as other_channel:
        chat(coze, publish(llm_live, chatflow(history_llm())), "hi", on_web.id)
    assert other_channel.value.code == 4200


def test_bad_requests_are_errors_before_the_stream(llm_live: LiveServer, token: str) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    plain = publish(llm_live, chatflow(history_llm()), chatflow=False)
    with pytest.raises(CozeAPIError, match="not a chatflow"):
        chat(coze, plain, "hi")
    workflow_id = publish(llm_live, chatflow(history_llm()))
    with pytest.raises(CozeAPIError, match="additional_messages"):
        list(coze.workflows.chat.stream(workflow_id=workflow_id))
    with pytest.raises(CozeAPIError, match="role 'user'"):
        list(coze.workflows.chat.stream(workflow_id=workflow_id,
                                        additional_messages=[Message.build_assistant_answer("hi")]))
    with pytest.raises(CozeAPIError) as unknown:
        chat(coze, workflow_id, "hi", "123")
    assert unknown.value.code == 4200


def test_failing_model_is_chat_failed_then_done(llm_live: LiveServer, fake_model: FakeModelServer) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    workflow_id = publish(llm_live, chatflow(history_llm()))
    fake_model.script(Reply(status=500, error="the model is down"))
    events = chat(coze, workflow_id, "hi")
    assert [e.event for e in events][-1] == ChatEventType.CONVERSATION_CHAT_FAILED
    failed = events[-1].chat
    assert failed.status == "failed" and failed.last_error is not None and failed.last_error.code == 5000
    assert "down" in failed.last_error.msg


def test_stream_has_no_id_lines_and_ends_with_done(llm_live: LiveServer, fake_model: FakeModelServer) -> None:
    workflow_id = publish(llm_live, chatflow(history_llm()))
    fake_model.script(Reply(content="ok"))
    body = {"workflow_id": workflow_id,
            "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}]}
    with httpx.Client(base_url=llm_live.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {llm_live.token()}"}) as http:
        text = http.post("/v1/workflows/chat", json=body).text
    lines = [line for line in text.splitlines() if line]
    assert all(line.startswith(("event: ", "data: ")) for line in lines)
    assert lines[-2:][0] == "event: done" and '"debug_url"' in lines[-1]


def question_chatflow() -> dict[str, Any]:
    qa = qa_node(question="What is your name?")
    qa["data"]["inputs"]["inputParameters"] = []
    llm = history_llm()
    llm["data"]["inputs"]["inputParameters"] = [c.param("input", c.ref(QA, "USER_RESPONSE"))]
    end = c.end_answer("{{answer}}", streaming=True, answer=c.ref(LLM_ID, "output"))
    return c.canvas([chat_start(), qa, llm, end],
                    [c.edge("100001", QA), c.edge(QA, LLM_ID), c.edge(LLM_ID, "900001")])


def test_question_interrupts_the_chat_and_the_next_chat_answers_it(llm_live: LiveServer,
                                                                   fake_model: FakeModelServer) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    workflow_id = publish(llm_live, question_chatflow())
    asked = chat(coze, workflow_id, "hello")
    assert [e.event for e in asked][-1] == ChatEventType.CONVERSATION_CHAT_REQUIRES_ACTION
    assert answer_of(asked) == "What is your name?"
    conversation_id = asked[-1].chat.conversation_id

    with pytest.raises(CozeAPIError, match="must not be empty"):  # refused: the question stays open
        chat(coze, workflow_id, " ", conversation_id)
    fake_model.script(Reply(content="Hi Bob"))
    answered = chat(coze, workflow_id, "Bob", conversation_id)
    assert answer_of(answered) == "Hi Bob"
    assert answered[-1].event == ChatEventType.CONVERSATION_CHAT_COMPLETED
    # The model saw the first round (the greeting and the question) as history, then the answer.
    assert fake_model.requests[-1]["messages"][1:] == [
        {"role": "user", "content": "hello"}, {"role": "assistant", "content": "What is your name?"},
        {"role": "user", "content": "Q: Bob"}]  # the refused answer left no trace

    again = chat(coze, workflow_id, "hello again", conversation_id)  # nothing pending: a new run asks again
    assert answer_of(again) == "What is your name?"


def test_each_answering_node_is_one_message(llm_live: LiveServer, fake_model: FakeModelServer) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    canvas = c.canvas(
        [chat_start(), history_llm(), c.output("198540", "thinking: {{x}}", streaming=True, x=c.ref(LLM_ID, "output")),
         c.end_answer("done: {{x}}", x=c.ref(LLM_ID, "output"))],
        [c.edge("100001", LLM_ID), c.edge(LLM_ID, "198540"), c.edge("198540", "900001")])
    workflow_id = publish(llm_live, canvas)
    conversation = coze.conversations.create(messages=[Message.build_user_question_text("earlier"),
                                                       Message.build_assistant_answer("noted")])
    fake_model.script(Reply(content=["a", "b"], delay=0.02))  # paced: a stream that keeps up gets each token
    events = chat(coze, workflow_id, "go", conversation.id)
    completed = [e.message for e in events if e.event == ChatEventType.CONVERSATION_MESSAGE_COMPLETED]
    assert [m.content for m in completed] == ["thinking: ab", "done: ab"]
    assert completed[0].id != completed[1].id
    deltas = [e.message for e in events if e.event == ChatEventType.CONVERSATION_MESSAGE_DELTA]
    assert [m.content for m in deltas if m.id == completed[0].id] == ["thinking: ", "a", "b"]
    # The messages given to conversations.create are the conversation's first round.
    assert fake_model.requests[-1]["messages"][1:3] == [{"role": "user", "content": "earlier"},
                                                        {"role": "assistant", "content": "noted"}]


# --- conversations by name, one chat at a time, keep-alive, a client that leaves ---------------------------------

@contextlib.contextmanager
def chat_server(data_dir: Path, fake: FakeModelServer, **settings: Any) -> Iterator[LiveServer]:
    """Another server on the fake model; servers given the same data_dir share one database."""
    write_models_file(data_dir, {MODEL_TYPE: fake}, timeout=30)
    with serving(Settings(data_dir=data_dir, port=free_port(), **settings)) as live:
        yield live


def named(live: LiveServer, **body: Any) -> dict[str, Any]:
    with httpx.Client(base_url=live.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {live.token()}"}) as http:
        answer: dict[str, Any] = http.post("/v1/workflow/conversation/create", json=body).json()
    return answer


def conversation_of(live: LiveServer, conversation_id: str) -> tuple[Conversation, list[list[ChatMessage]]]:
    async def read(store: Store) -> tuple[Conversation, list[list[ChatMessage]]]:
        conversation = await store.get_conversation(conversation_id)
        assert conversation is not None
        return conversation, await store.recent_rounds(conversation_id, 10)

    return live.call(read)  # type: ignore[no-any-return]


def settled(live: LiveServer, conversation_id: str) -> list[list[ChatMessage]]:
    """The conversation's rounds once no chat runs in it any more (its chat has recorded what it had)."""
    for _ in range(500):
        conversation, rounds = conversation_of(live, conversation_id)
        if conversation.running_chat is None:
            return rounds
        time.sleep(0.02)
    raise AssertionError(f"a chat still runs in conversation {conversation_id}")


def test_conversation_names_as_coze_studio(llm_live: LiveServer, fake_model: FakeModelServer) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    workflow_id = publish(llm_live, chatflow(history_llm()))
    unknown = named(llm_live, conversation_name="support", workflow_id=workflow_id)  # get_or_create false
    assert unknown["code"] == 4200 and "get_or_create" in unknown["msg"]
    created = named(llm_live, conversation_name="support", get_or_create=True, workflow_id=workflow_id)
    assert created["code"] == 0 and created["data"]["name"] == "support"
    support = created["data"]["id"]
    assert named(llm_live, conversation_name="support", get_or_create=True, workflow_id=workflow_id)["data"][
        "id"] == support
    assert named(llm_live, conversation_name=" ", get_or_create=True)["code"] == 4000

    # A chat without conversation_id continues the conversation its CONVERSATION_NAME stands for.
    fake_model.script(Reply(content="Hi Ann"), Reply(content="Ann"))
    first = chat(coze, workflow_id, "I am Ann", parameters={"CONVERSATION_NAME": "support"})
    assert first[-1].chat.conversation_id == support
    second = chat(coze, workflow_id, "Who am I?", parameters={"CONVERSATION_NAME": "support"})
    assert second[-1].chat.conversation_id == support
    assert fake_model.requests[-1]["messages"][1:3] == [{"role": "user", "content": "I am Ann"},
                                                        {"role": "assistant", "content": "Hi Ann"}]
    # get_or_create false starts the name afresh; "Default" always exists (every Studio app has it).
    renewed = named(llm_live, conversation_name="support", workflow_id=workflow_id)["data"]["id"]
    assert renewed != support
    fake_model.script(Reply(content="?"))
    assert chat(coze, workflow_id, "hi", parameters={"CONVERSATION_NAME": "support"})[-1].chat.conversation_id == \
        renewed
    assert named(llm_live, conversation_name="Default")["code"] == 0
    # Names are per app and connector: the same name elsewhere is another conversation.
    on_web = named(llm_live, conversation_name="support", get_or_create=True, workflow_id=workflow_id,
                   connector_id="999")
    assert on_web["data"]["id"] not in (support, renewed)


def test_a_second_chat_in_a_busy_conversation_is_4016(tmp_path: Path, fake_model: FakeModelServer) -> None:
    with chat_server(tmp_path, fake_model) as first, chat_server(tmp_path, fake_model) as second:
        workflow_id = publish(first, chatflow(history_llm()))
        conversation = Coze(auth=TokenAuth(first.token()), base_url=first.base_url).conversations.create()
        gate = threading.Event()
        fake_model.script(Reply(content="slow answer", gate=gate), Reply(content="next"))
        coze = Coze(auth=TokenAuth(first.token()), base_url=first.base_url)
        running = iter(coze.workflows.chat.stream(workflow_id=workflow_id, conversation_id=conversation.id,
                                                  additional_messages=[Message.build_user_question_text("one")]))
        assert next(running).event == ChatEventType.CONVERSATION_CHAT_CREATED
        # The other server shares the database: the conversation is occupied there too.
        other = Coze(auth=TokenAuth(second.token()), base_url=second.base_url)
        for client in (coze, other):
            with pytest.raises(CozeAPIError) as occupied:
                chat(client, workflow_id, "two", conversation.id)
            assert occupied.value.code == 4016 and "occupied" in occupied.value.msg
        gate.set()
        rest = list(running)
        assert rest[-1].event == ChatEventType.CONVERSATION_CHAT_COMPLETED and answer_of(rest) == "slow answer"
        settled(first, conversation.id)
        assert answer_of(chat(other, workflow_id, "two", conversation.id)) == "next"  # free once the chat ended
        assert [[m.content for m in r] for r in settled(first, conversation.id)] == [
            ["one", "slow answer"], ["two", "next"]]  # the refused chats left no trace

        # A process that died mid-chat stops renewing its lease: once it lapses the conversation is free.
        async def dead_chat(store: Store) -> bool:
            return await store.claim_conversation(conversation.id, "1", time.time() - CHAT_LEASE - 1, CHAT_LEASE)

        assert first.call(dead_chat)
        fake_model.script(Reply(content="after"))
        assert answer_of(chat(coze, workflow_id, "three", conversation.id)) == "after"


def test_keep_alive_is_a_blank_line_cozepy_skips(tmp_path: Path, fake_model: FakeModelServer) -> None:
    with chat_server(tmp_path, fake_model, ping_interval=0.02) as live:
        workflow_id = publish(live, chatflow(history_llm()))
        gate = threading.Event()
        fake_model.script(Reply(content="late", gate=gate))
        body = {"workflow_id": workflow_id,
                "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}]}
        lines: list[str] = []
        with httpx.Client(base_url=live.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {live.token()}"}) as http, \
                http.stream("POST", "/v1/workflows/chat", json=body) as response:
            for line in response.iter_lines():
                lines.append(line)
                if lines[-3:] == ["", "", ""]:
                    gate.set()  # two keep-alives came during the model's silence
        assert all(line.startswith(("event: ", "data: ")) for line in lines if line)
        assert "event: conversation.chat.completed" in lines

        # cozepy reads the same kind of stream (keep-alives while the model is held) as if there were none.
        gate = threading.Event()
        fake_model.script(Reply(content=["la", "te"], gate=gate))
        threading.Timer(0.3, gate.set).start()  # time enough for several keep-alives
        coze = Coze(auth=TokenAuth(live.token()), base_url=live.base_url)
        events = chat(coze, workflow_id, "hi")
        assert [e.event for e in events] == [
            ChatEventType.CONVERSATION_CHAT_CREATED, ChatEventType.CONVERSATION_CHAT_IN_PROGRESS,
            ChatEventType.CONVERSATION_MESSAGE_DELTA, ChatEventType.CONVERSATION_MESSAGE_DELTA,
            ChatEventType.CONVERSATION_MESSAGE_COMPLETED, ChatEventType.CONVERSATION_CHAT_COMPLETED]


def two_answers_chatflow() -> dict[str, Any]:
    """An Output node streams the model's answer, then the End node repeats it."""
    return c.canvas(
        [chat_start(), history_llm(), c.output("198540", "{{x}}", streaming=True, x=c.ref(LLM_ID, "output")),
         c.end_answer("done: {{x}}", x=c.ref(LLM_ID, "output"))],
        [c.edge("100001", LLM_ID), c.edge(LLM_ID, "198540"), c.edge("198540", "900001")])


def leave_after_first_delta(live: LiveServer, workflow_id: str, conversation_id: str, text: str) -> None:
    body = {"workflow_id": workflow_id, "conversation_id": conversation_id,
            "additional_messages": [{"role": "user", "content": text, "content_type": "text"}]}
    with httpx.Client(base_url=live.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {live.token()}"}) as http, \
            http.stream("POST", "/v1/workflows/chat", json=body) as response:
        for line in response.iter_lines():
            if line == "event: conversation.message.delta":
                return  # leaving the block closes the connection mid-answer


@pytest.mark.parametrize("on_disconnect", ["cancel", "continue"])
def test_a_client_that_leaves_mid_chat_loses_nothing_answered(tmp_path: Path, fake_model: FakeModelServer,
                                                              on_disconnect: str) -> None:
    with chat_server(tmp_path, fake_model, on_disconnect=on_disconnect) as live:
        coze = Coze(auth=TokenAuth(live.token()), base_url=live.base_url)
        workflow_id = publish(live, two_answers_chatflow())
        conversation = coze.conversations.create()
        # The model streams slowly: the client leaves after the first piece, long before the second.
        fake_model.script(Reply(content=["Hel", "lo"], delay=0.3))
        leave_after_first_delta(live, workflow_id, conversation.id, "hi")
        [round_] = settled(live, conversation.id)
        answers = [(m.role, m.content, m.incomplete) for m in round_]
        if on_disconnect == "cancel":  # the run stopped: what was answered so far, marked as cut short
            assert answers == [("user", "hi", False), ("assistant", "Hel", True)]
        else:  # the run went on: its whole answers
            assert answers == [("user", "hi", False), ("assistant", "Hello", False),
                               ("assistant", "done: Hello", False)]
        # The conversation is free and the next chat has the round as history.
        fake_model.script(Reply(content="again"))
        assert chat(coze, workflow_id, "more", conversation.id)[-1].event == \
            ChatEventType.CONVERSATION_CHAT_COMPLETED
        assert fake_model.requests[-1]["messages"][1:3] == [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": answers[1][1]}]


def test_intent_node_gets_the_chat_history_its_setting_asks_for(llm_live: LiveServer,
                                                                 fake_model: FakeModelServer) -> None:
    intent = intent_node(["greeting"])
    intent["data"]["inputs"]["llmParam"]["modelType"] = MODEL_TYPE
    intent["data"]["inputs"]["inputParameters"] = [c.param("query", c.ref("100001", "USER_INPUT"))]
    intent["data"]["inputs"]["chatHistorySetting"] = {"enableChatHistory": True, "chatHistoryRound": 1}
    end = c.end_answer("intent {{id}}", id=c.ref(INTENT_ID, "classificationId", "integer"))
    canvas = c.canvas([chat_start(), intent, end],
                      [c.edge("100001", INTENT_ID), c.edge(INTENT_ID, "900001", "branch_0"),
                       c.edge(INTENT_ID, "900001", "default")])
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    workflow_id = publish(llm_live, canvas)
    conversation = coze.conversations.create()
    classified = '{"classificationId": 1, "reason": "a greeting"}'
    fake_model.script(*[Reply(content=classified) for _ in range(3)])
    for text in ("hello", "hi there"):
        assert answer_of(chat(coze, workflow_id, text, conversation.id)) == "intent 1"
    assert fake_model.requests[-1]["messages"][1:] == [{"role": "user", "content": "hello"},
                                                       {"role": "assistant", "content": "intent 1"},
                                                       {"role": "user", "content": "hi there"}]
    chat(coze, workflow_id, "bye", conversation.id)  # one round only: the last
    assert [m["content"] for m in fake_model.requests[-1]["messages"][1:]] == ["hi there", "intent 1", "bye"]
