"""What the console's browser tests and its screenshot script (console/screenshots.py) share: a workflow that
asks a question and branches on the answer, and headless Chromium from Debian's package, launched for a closed
network."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Browser, Playwright

from tests import canvases as c

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str:
    """The system Chromium (Debian's `chromium`; `.ci/run` installs it); KNOTFLOW_CHROMIUM names another."""
    found = os.environ.get("KNOTFLOW_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("the console's browser tests need Chromium: `apt-get install chromium` (.ci/run does)")
    return found


@contextmanager
def chromium(playwright: Playwright) -> Iterator[Browser]:
    """The browser, on a fresh profile (Playwright gives each launch a new, temporary user-data-dir)."""
    browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


def _at(node: dict[str, Any], x: int, y: int) -> dict[str, Any]:
    node["meta"] = {"position": {"x": x, "y": y}}
    return node


DETAILS_FORM = [{"type": "string", "name": "city", "required": True}, {"type": "integer", "name": "nights"}]


def trip_canvas() -> dict[str, Any]:
    """Start(name, days=3, a ticket file) → Input "Details" (city, nights) → Question "Season" (spring / autumn) →
    If spring → one of two Outputs → End."""
    start = c.start({"name": "name", "type": "string", "required": True, "description": "who travels"},
                    {"name": "days", "type": "integer", "required": False, "defaultValue": 3},
                    {"name": "ticket", "type": "string", "assistType": 1, "required": False})
    details = c.node("301", "30", "Details", inputs={"outputSchema": json.dumps(DETAILS_FORM)}, outputs=DETAILS_FORM)
    season = c.node("182", "18", "Season", inputs={
        "inputParameters": [c.param("name", c.ref("100001", "name"))], "question": "Hi {{name}}, which season?",
        "answer_type": "option", "option_type": "static", "options": [{"name": "spring"}, {"name": "autumn"}],
    }, outputs=[{"name": "optionId", "type": "string"}, {"name": "optionContent", "type": "string"}])
    is_spring = {"operator": 1, "left": {"input": c.ref("182", "optionContent")},
                 "right": {"input": c.literal("spring")}}
    branch = c.node("600", "8", "Spring?",
                    inputs={"branches": [{"condition": {"logic": 2, "conditions": [is_spring]}}]})
    packing = {"name": c.ref("100001", "name"), "days": c.ref("100001", "days", "integer"),
               "city": c.ref("301", "city")}
    spring = c.output("135001", "{{name}}: pack a raincoat for {{days}} days in {{city}}.", title="Spring packing",
                      **packing)
    autumn = c.output("135002", "{{name}}: pack a scarf for {{days}} days in {{city}}.", title="Autumn packing",
                      **packing)
    end = c.end_return(season=c.ref("182", "optionContent"), city=c.ref("301", "city"))
    nodes = [_at(start, 0, 0), _at(details, 300, 0), _at(season, 600, 0), _at(branch, 900, 0),
             _at(spring, 1200, -140), _at(autumn, 1200, 140), _at(end, 1500, 0)]
    return c.canvas(nodes, [
        c.edge("100001", "301"), c.edge("301", "182"), c.edge("182", "600", "branch_0"),
        c.edge("182", "600", "branch_1"), c.edge("182", "600", "default"), c.edge("600", "135001", "true"),
        c.edge("600", "135002", "false"),
        c.edge("135001", "900001"), c.edge("135002", "900001"),
    ])
