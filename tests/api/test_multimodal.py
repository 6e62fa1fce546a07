"""Messages with files reach the model as files: cozepy's workflow_chat_multimode_stream.py (an object_string
question with an uploaded image) and an LLM node whose prompt shows an image input. The fake model server records
what it was sent."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from cozepy import ChatEventType, Coze, CozeAPIError, Message, MessageObjectString, TokenAuth

from tests import canvases as c
from tests.api.conftest import LiveServer
from tests.api.test_chat import chatflow, history_llm, publish
from tests.api.test_llm_stream import llm_live
from tests.fakes.model_server import FakeModelServer, Reply
from tests.nodes.test_llm import LLM_ID, llm_node

__all__ = ["llm_live"]  # the fixture, imported so pytest finds it here

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAAB"
                       "JRU5ErkJggg==")


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    path.write_bytes(PNG)
    return path


def _inline_image(part: dict[str, Any]) -> bytes:
    assert part["type"] == "image_url"
    url = part["image_url"]["url"]
    assert url.startswith("data:") and ";base64," in url
    return base64.b64decode(url.split(",", 1)[1])


def test_cozepy_multimode_chat_sends_the_image_to_the_model(llm_live: LiveServer, fake_model: FakeModelServer,
                                                             tmp_path: Path) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    workflow_id = publish(llm_live, chatflow(history_llm()))
    conversation = coze.conversations.create()
    file = coze.files.upload(file=_image(tmp_path))
    fake_model.script(Reply(content="It says hello."))
    events = list(coze.workflows.chat.stream(
        workflow_id=workflow_id, conversation_id=conversation.id,
        additional_messages=[Message.build_user_question_objects([
            MessageObjectString.build_text("What text is on the picture?"),
            MessageObjectString.build_image(file_id=file.id)])]))
    assert [e.message.content for e in events if e.event == ChatEventType.CONVERSATION_MESSAGE_COMPLETED] == [
        "It says hello."]
    content = fake_model.requests[-1]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "Q: What text is on the picture?"}
    assert _inline_image(content[1]) == PNG and len(content) == 2
    # The conversation keeps the message as it was sent.
    stored = coze.conversations.messages.list(conversation_id=conversation.id, order="asc").items[0]
    assert stored.content_type == "object_string" and file.id in stored.content

    with_foreign_file = Message.build_user_question_objects([MessageObjectString.build_image(file_id="123")])
    try:
        list(coze.workflows.chat.stream(workflow_id=workflow_id, additional_messages=[with_foreign_file]))
        raise AssertionError("an unknown file id was accepted")
    except CozeAPIError as error:
        assert error.code == 4000 and "file 123 does not exist" in str(error)


def test_an_llm_prompt_showing_an_image_input_sends_the_image(llm_live: LiveServer, fake_model: FakeModelServer,
                                                              tmp_path: Path) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    node = llm_node(prompt="Describe {{img}} briefly.")
    node["data"]["inputs"]["inputParameters"] = [c.param("img", {**c.ref("100001", "img"), "assistType": 2})]
    canvas = c.canvas([c.start({"name": "img", "type": "string", "assistType": 2, "required": True}), node,
                       c.end_return(output=c.ref(LLM_ID, "output"))],
                      [c.edge("100001", LLM_ID), c.edge(LLM_ID, "900001")])
    workflow_id = publish(llm_live, canvas, chatflow=False)
    file = coze.files.upload(file=_image(tmp_path))
    fake_model.script(Reply(content="A dot."))
    run = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"img": {"file_id": file.id}})
    assert "A dot." in str(run.data)
    content = fake_model.requests[-1]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "Describe "} and content[2] == {"type": "text", "text": " briefly."}
    assert _inline_image(content[1]) == PNG

    fake_model.script(Reply(content="Plain."))
    text_only = publish(llm_live, chatflow(history_llm()))
    list(coze.workflows.chat.stream(workflow_id=text_only,
                                    additional_messages=[Message.build_user_question_text("just text")]))
    assert fake_model.requests[-1]["messages"][-1]["content"] == "Q: just text"  # text stays a plain string
