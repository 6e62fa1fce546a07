"""Take the README's screenshots of the console (`make screenshots`): a server with the browser tests' workflows,
driven in headless Chromium as a person would use it; one PNG per main page in the folder given (docs/console).

Run from the repository's root with the project's virtualenv: `.venv/bin/python console/screenshots.py docs/console`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests/ package

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from knotflow.config import Settings  # noqa: E402
from tests import canvases  # noqa: E402
from tests.api.conftest import free_port, serving  # noqa: E402
from tests.browser.conftest import sign_in  # noqa: E402
from tests.browser.scenario import chromium, trip_canvas  # noqa: E402


def shoot(page: Page, folder: Path, name: str) -> None:
    page.wait_for_timeout(300)  # let the canvas finish fitting its view
    page.screenshot(path=str(folder / f"{name}.png"))
    print(folder / f"{name}.png")


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data, serving(Settings(data_dir=Path(data), port=free_port())) as live:
        trip_id = live.publish(trip_canvas(), name="Trip planner", description="Asks the season, then packs")
        live.publish(canvases.greeting(), name="Greeting", description="Says hello")
        token = live.token(("run", "edit"))
        with sync_playwright() as playwright, chromium(playwright) as browser:
            page = browser.new_page(viewport={"width": 1360, "height": 860})
            page.goto(f"{live.base_url}/console/workflows/{trip_id}")
            page.wait_for_selector("#token")
            shoot(page, folder, "sign-in")
            sign_in(page, token)
            page.locator(".block[data-node-id='182']").click()
            expect(page.locator(".node-config")).to_be_visible()
            shoot(page, folder, "canvas")

            page.get_by_role("link", name="Try it").click()
            page.get_by_label("name (string)").fill("Ada")
            page.get_by_role("button", name="Run", exact=True).click()
            details = page.get_by_role("form", name="Answer Details")
            details.get_by_label("city (string)").fill("Lisbon")
            details.get_by_role("button", name="Send").click()
            page.get_by_role("group", name="Answer Season").get_by_role("button", name="autumn").click()
            expect(page.locator(".event-Done")).to_be_visible()
            shoot(page, folder, "try-it")

            page.get_by_role("link", name="open the run's page").click()
            page.locator(".timeline .row").nth(7).click()
            expect(page.get_by_role("complementary", name="Node execution")).to_contain_text("Autumn packing")
            shoot(page, folder, "run")
            page.get_by_role("button", name="Canvas").click()
            shoot(page, folder, "run-canvas")

            page.get_by_role("navigation", name="Sections").get_by_role("link", name="Workflows").click()
            expect(page.locator("tbody tr")).to_have_count(2)
            shoot(page, folder, "workflows")
            page.get_by_role("navigation", name="Sections").get_by_role("link", name="Runs").click()
            expect(page.locator("tbody tr")).to_have_count(1)
            shoot(page, folder, "runs")

            phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
            phone.goto(page.url.replace("/runs", "/sign-in"))
            sign_in(phone, token)
            phone.get_by_role("navigation", name="Sections").get_by_role("link", name="Runs").click()
            phone.locator("tbody a").first.click()
            expect(phone.locator(".timeline")).to_be_visible()
            shoot(phone, folder, "run-phone")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console"))
