"""A live knotflow server with the trip workflow published (and one calling a fake model), a signed-in-able
token, and headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from knotflow.config import Settings
from knotflow.models.registry import load_registry
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.api.test_console_api import HeldNode
from tests.browser.scenario import chromium, trip_canvas
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes.test_llm import MODEL_TYPE, llm_node, through_llm

MODEL_USAGE = (12, 4)  # what the fake model reports for every answer: 12 tokens in, 4 out


@dataclass
class Console:
    live: LiveServer
    token: str  # may run, and edit
    other_token: str  # of another space only
    trip_id: str
    greeting_id: str
    held_id: str  # Start → a node that runs until the test releases it → End
    llm_id: str  # Start → LLM (the fake model: MODEL_USAGE) → End

    def url(self, path: str = "") -> str:
        return f"{self.live.base_url}/console{path}"


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data_dir: Path = tmp_path_factory.mktemp("knotflow-console")
    model = FakeModelServer(default=Reply(content="Bonjour", usage=MODEL_USAGE)).start()
    write_models_file(data_dir, {MODEL_TYPE: model})
    try:
        with serving(Settings(data_dir=data_dir, port=free_port())) as live:
            trip_id = live.publish(trip_canvas(), name="Trip planner")  # into the first space, created here
            greeting_id = live.publish(c.greeting(), name="Greeting")
            held_id = live.publish(c.canvas([c.start(), c.node("700", HeldNode.type_id, "Held"),
                                             c.end_return(output=c.ref("700", "output"))],
                                            [c.edge("100001", "700"), c.edge("700", "900001")]), name="Held")
            llm_id = live.publish(through_llm(llm_node()), name="Translator",
                                  models=load_registry(live.settings.resolved_models_file()))
            live.space("team-b")
            yield Console(live, live.token(("run", "edit")), live.token(("run",), spaces=["team-b"]), trip_id,
                          greeting_id, held_id, llm_id)
    finally:
        model.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright, chromium(playwright) as launched:
        yield launched


class BrowserErrors(list[str]):
    """Errors the page logs (console errors, uncaught exceptions): a person's page shows none."""

    def watch(self, page: Page) -> Page:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.append(f"uncaught: {error}"))
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.append(message.text)


@pytest.fixture()
def errors() -> BrowserErrors:
    return BrowserErrors()


def sign_in(page: Page, token: str) -> None:
    """Sign in with the keyboard on the sign-in page the console sends a stranger to."""
    page.wait_for_selector("#token")
    page.focus("#token")
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_selector("header.topbar")
