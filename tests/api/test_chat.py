"""Chatflows end to end: cozepy `workflows.chat.stream` and `conversations.create` against the live server and
the fake model server; the LLM node's chat history is checked on the requests the fake model recorded."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cozepy import ChatEventType, Coze, CozeAPIError, Message, TokenAuth

from knotflow.models.registry import load_registry
from knotflow.service import catalog
from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import LiveServer
from tests.api.test_llm_stream import fake_model, llm_live
from tests.fakes.model_server import FakeModelServer, Reply
from tests.nodes.test_llm import LLM_ID, llm_node
from tests.nodes.test_question import QA, qa_node

__all__ = ["fake_model", "llm_live"]  # the fixtures, imported so pytest finds them here

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
    assert denied.value.code == 4101

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
