"""The web console in a real browser (headless Chromium): sign in, find a workflow, read its canvas, run it from
Try it and answer its question while the events arrive, then read the run's page; follow a debug_url on a phone-
sized screen; and check that a token of another space sees nothing of it."""

from __future__ import annotations

import json
import re

import httpx
from playwright.sync_api import Browser, Page, expect

from tests import canvases as c
from tests.api.test_console_api import HeldNode
from tests.api.test_wire import parse_frames
from tests.browser.conftest import BrowserErrors, Console, sign_in


def test_sign_in_find_canvas_try_it_answer_and_read_the_run(console_server: Console, browser: Browser,
                                                            errors: BrowserErrors) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = errors.watch(context.new_page())

    page.goto(console_server.url("/"))
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    sign_in(page, console_server.token)
    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "knotflow_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert console_server.token not in page.url

    # Find the workflow by name, open its canvas.
    page.get_by_placeholder("Search by name").fill("trip")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name="Trip planner").click()
    blocks = page.locator(".react-flow__node-block")
    expect(blocks).to_have_count(7)
    season = page.locator(".block[data-node-id='182']")
    expect(season).to_contain_text("Season")
    expect(season).to_contain_text("Question")
    for port in ("spring", "autumn", "Other"):  # the Question's options and default as branch ports
        expect(season.locator(".port", has_text=port)).to_have_count(1)
    expect(page.locator(".block[data-node-id='600'] .port")).to_have_text(["If", "Else"])
    season.click()
    expect(page.locator(".node-config")).to_contain_text("Question (18)")

    # Try it: the form comes from the Start node (a file among the parameters); the events arrive; the Input
    # node's form and the Question's options are answered in the page.
    page.get_by_role("link", name="Try it").click()
    expect(page.get_by_label("days (integer)")).to_have_attribute("placeholder", "default: 3")
    page.get_by_label("name (string)").fill("Ada")
    page.get_by_label("ticket (file)").set_input_files(
        files=[{"name": "ticket.txt", "mimeType": "text/plain", "buffer": b"LIS 7:40"}])
    run_button = page.get_by_role("button", name="Run", exact=True)
    expect(run_button).to_be_enabled()  # the upload is done
    run_button.click()
    expect(page.locator(".event-Interrupt")).to_contain_text("Details waits for an answer")
    details = page.get_by_role("form", name="Answer Details")
    details.get_by_label("city (string)").fill("Lisbon")
    details.get_by_role("button", name="Send").click()
    answer = page.get_by_role("group", name="Answer Season")
    expect(answer).to_contain_text("Hi Ada, which season?")
    answer.get_by_role("button", name="autumn").click()
    expect(page.locator(".event-Done")).to_be_visible()
    expect(page.locator(".event-Message", has_text="Autumn packing")).to_contain_text(
        "Ada: pack a scarf for 3 days in Lisbon.")
    assert [e.get_attribute("data-event") for e in page.locator(".event").all()] == [
        "Message", "Interrupt", "Answer", "Message", "Interrupt", "Answer", "Message", "Message", "Done"]

    # The run's page: statuses, the timeline, a node's output.
    page.get_by_role("link", name="open the run's page").click()
    expect(page.locator(".page-head .status")).to_have_text("Success")
    timeline = page.locator(".timeline .row")
    expect(timeline).to_have_count(9)
    assert [(row.get_attribute("data-node-id"), row.locator(".row-status").inner_text()) for row in timeline.all()] == [
        ("100001", "Success"), ("301", "Interrupted"), ("301", "Success"), ("182", "Interrupted"), ("182", "Success"),
        ("600", "Success"), ("135001", "Skipped"), ("135002", "Success"), ("900001", "Success")]
    timeline.nth(7).focus()
    page.keyboard.press("Enter")  # the keyboard picks a node execution
    detail = page.get_by_role("complementary", name="Node execution")
    expect(detail).to_contain_text("Autumn packing")
    expect(detail.get_by_label("Outputs of Autumn packing")).to_contain_text("Ada: pack a scarf for 3 days in Lisbon.")
    timeline.nth(0).click()
    expect(detail.get_by_label("Outputs of Start")).to_contain_text("x-wf-file_name=ticket.txt")  # the file's link
    expect(page.get_by_label("Run input")).to_contain_text("file_id")
    expect(page.get_by_label("Run output")).to_contain_text("Lisbon")
    page.get_by_role("button", name="Canvas").click()
    expect(page.locator(".block[data-node-id='135002']")).to_have_attribute("data-status", "Success")
    expect(page.locator(".block[data-node-id='135001']")).to_have_attribute("data-status", "Skipped")

    # The runs list shows it, filtered by connector.
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Runs").click()
    page.get_by_label("Connector").select_option("10000010")
    expect(page.locator("tbody tr").first).to_contain_text("Trip planner")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    assert not [c for c in context.cookies() if c["name"] == "knotflow_session"]
    assert errors == []
    context.close()


def _api_run(console_server: Console) -> str:
    """A run made through the open API, as a program makes it; returns its debug_url."""
    with httpx.Client(base_url=console_server.live.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {console_server.token}"}) as http:
        body = http.post("/v1/workflow/stream_run", json={"workflow_id": console_server.greeting_id,
                                                          "parameters": {"name": "Grace"}}).text
    return str(parse_frames(body)[-1][2]["debug_url"])


def test_a_debug_url_leads_through_sign_in_to_the_run_on_a_phone(console_server: Console, browser: Browser,
                                                                 errors: BrowserErrors) -> None:
    debug_url = _api_run(console_server)
    execute_id = re.search(r"execute_id=(\d+)", debug_url).group(1)  # type: ignore[union-attr]
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = errors.watch(context.new_page())
    page.goto(debug_url)
    expect(page.get_by_role("heading", name="Sign in to knotflow")).to_be_visible()
    sign_in(page, console_server.token)
    expect(page).to_have_url(console_server.url(f"/runs/{execute_id}"))
    expect(page.locator(".page-head .status")).to_have_text("Success")
    expect(page.locator(".timeline .row")).to_have_count(3)
    expect(page.get_by_label("Run output")).to_contain_text("Grace")
    # Readable on a narrow screen: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []
    context.close()


def test_a_model_nodes_tokens_show_on_its_timeline_row(console_server: Console, browser: Browser,
                                                       errors: BrowserErrors) -> None:
    with httpx.Client(base_url=console_server.live.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {console_server.token}"}) as http:
        ran = http.post("/v1/workflow/run", json={"workflow_id": console_server.llm_id,
                                                  "parameters": {"input": "hello"}}).json()
    assert ran["code"] == 0, ran
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = errors.watch(context.new_page())
    page.goto(console_server.url(f"/runs/{ran['execute_id']}"))
    sign_in(page, console_server.token)
    timeline = page.locator(".timeline .row")
    expect(timeline).to_have_count(3)
    tokens = page.locator(".timeline .row-tokens")
    expect(tokens).to_have_count(1)  # only the LLM called a model: Start and End show none
    llm = page.locator(".timeline .row[data-node-id='156549']")
    expect(llm.locator(".row-tokens")).to_have_text("16 tokens (12 in, 4 out)")  # in and out for a screen reader
    expect(llm.locator(".row-tokens")).to_have_attribute("title", "12 in, 4 out")  # and on hover
    expect(llm.locator(".row-tokens")).to_be_visible()
    llm.click()
    expect(page.get_by_role("complementary", name="Node execution")).to_contain_text("Tokens16 (12 in, 4 out)")
    expect(page.locator(".inline-facts")).to_contain_text("16 (12 in, 4 out)")  # the run's total: its one LLM
    assert errors == []
    context.close()


def _run_ids(page: Page) -> list[str]:
    return [link.inner_text() for link in page.locator("tbody a code").all()]


def test_a_token_of_another_space_sees_nothing_of_it(console_server: Console, browser: Browser,
                                                     errors: BrowserErrors) -> None:
    debug_url = _api_run(console_server)
    execute_id = re.search(r"execute_id=(\d+)", debug_url).group(1)  # type: ignore[union-attr]
    context = browser.new_context()
    page = errors.watch(context.new_page())
    page.goto(console_server.url("/runs"))
    sign_in(page, console_server.other_token)
    expect(page.get_by_text("No run matches.")).to_be_visible()
    page.goto(console_server.url("/workflows"))
    expect(page.get_by_text("No workflow matches.")).to_be_visible()
    page.goto(console_server.url(f"/runs/{execute_id}"))
    expect(page.get_by_role("alert")).to_have_text(f"run {execute_id} does not exist")
    page.goto(console_server.url(f"/workflows/{console_server.trip_id}"))
    expect(page.get_by_role("alert")).to_have_text(f"workflow {console_server.trip_id} does not exist")
    assert errors == []
    context.close()


def test_a_running_run_is_followed_live(console_server: Console, browser: Browser, errors: BrowserErrors) -> None:
    HeldNode.release.clear()
    with httpx.Client(base_url=console_server.live.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {console_server.token}"}) as http:
        started = http.post("/v1/workflow/run", json={"workflow_id": console_server.held_id, "is_async": True})
    execute_id = started.json()["execute_id"]
    context = browser.new_context()
    page = errors.watch(context.new_page())
    try:
        page.goto(console_server.url(f"/runs/{execute_id}"))
        sign_in(page, console_server.token)
        expect(page.locator(".page-head .status")).to_have_text("Running")
        expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
        expect(page.locator(".timeline .row")).to_have_count(1)  # Start, recorded while the run goes on
    finally:
        HeldNode.release.set()
    expect(page.locator(".page-head .status")).to_have_text("Success")
    expect(page.locator(".timeline .row")).to_have_count(3)
    expect(page.get_by_label("Run output")).to_contain_text("released")
    expect(page.get_by_text("Live", exact=True)).to_have_count(0)
    assert errors == []
    context.close()


def test_a_canvas_file_is_imported_as_a_draft_and_published(console_server: Console, browser: Browser,
                                                             errors: BrowserErrors) -> None:
    context = browser.new_context()
    page = errors.watch(context.new_page())
    page.goto(console_server.url("/workflows"))
    sign_in(page, console_server.token)
    page.get_by_role("button", name="Import a canvas").click()
    form = page.get_by_role("form", name="Import a canvas")
    form.get_by_label("Canvas file").set_input_files(
        files=[{"name": "echo-upload.json", "mimeType": "application/json",
                "buffer": json.dumps(c.echo()).encode()}])
    form.get_by_label("Publish it").uncheck()
    form.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="echo-upload")).to_be_visible()
    expect(page.locator(".page-head .badge")).to_have_text("Draft only")
    expect(page.locator(".react-flow__node-block")).to_have_count(2)  # the draft's canvas
    publish = page.get_by_role("form", name="Publish the draft")
    publish.get_by_label("Version name").fill("v1")
    publish.get_by_role("button", name="Publish the draft").click()
    expect(page.locator(".page-head .badge")).to_have_text("v1")
    page.get_by_role("link", name="Versions").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("v1")
    assert errors == []
    context.close()
