"""The dashboard on GET /, driven by headless Chromium through a real click path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from rpcsvc.app import create_app
from rpcsvc.client import RpcClient
from rpcsvc.config import Settings
from rpcsvc.manager import TaskContext
from rpcsvc.registry import TaskType
from rpcsvc.tasktypes import builtin_registry, register_debug_types
from tests.browser import headless_chromium
from tests.conftest import Service, StartService

WAIT = 15  # seconds for the page to show a change; it refreshes every 2 s


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with headless_chromium(width=1400, height=1000) as driver:
        yield driver


class Page:
    """The dashboard as a person sees it; every method blocks, so call it in a thread."""

    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        self.driver = driver
        self.url = url

    def open(self) -> None:
        self.driver.get(self.url)

    def until(self, condition: Callable[[], Any], message: str) -> Any:
        # The page re-renders every refresh: an element found a moment ago may be replaced.
        wait = WebDriverWait(self.driver, WAIT, ignored_exceptions=[StaleElementReferenceException])
        return wait.until(lambda _: condition(), message)

    def click(self, css: str) -> None:
        def clicked() -> bool:
            self.find(css).click()
            return True

        self.until(clicked, f"cannot click {css}")

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    def counts(self) -> dict[str, str]:
        # Read in one script, so that a refresh cannot land between two reads.
        return dict(
            self.driver.execute_script(
                "return [...document.querySelectorAll('.card[data-status]')]"
                ".map(c => [c.dataset.status, c.querySelector('.count').textContent])"
            )
        )

    def rows(self) -> list[tuple[str, str]]:
        found = self.driver.execute_script(
            "return [...document.querySelectorAll('#task-rows tr')]"
            ".map(r => [r.dataset.taskId, r.dataset.status])"
        )
        return [(task_id, status) for task_id, status in found]

    def detail(self, field: str) -> str:
        return self.text(f'#detail [data-field="{field}"]')

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    # The server runs on this test's event loop: the blocking browser calls must not.
    return await asyncio.to_thread(fn, *args)


async def _stand_in_report(params: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    return {"format": "json", "report": {}}


async def _service_with_reports(aiohttp_client: Any) -> Service:
    registry = builtin_registry()
    register_debug_types(registry)
    if "generate_report" not in registry:  # until the analysis issue registers the real one
        registry.register(
            TaskType(
                name="generate_report",
                kind="io",
                description="stand-in for the dashboard test",
                params_schema={"type": "object"},
                run=_stand_in_report,
            )
        )
    http: TestClient[Any, Any] = await aiohttp_client(
        create_app(Settings(workers=2, debug_tasks=True), registry=registry)
    )
    return Service(http, RpcClient("/rpc", session=http))


async def test_a_person_follows_and_cancels_tasks(
    aiohttp_client: Any, browser: webdriver.Chrome
) -> None:
    # Given a completed analysis, a failed task, a report and a long running task
    service = await _service_with_reports(aiohttp_client)
    rpc = service.rpc
    analysis = await rpc.run("analyze_content", {"texts": ["What a great debate!"]})
    failed = await rpc.run("debug.fail", {"message": "bad data in post 3"})
    report = await rpc.run("generate_report", {"task_ids": [analysis["task_id"]]})
    assert report["status"] == "completed", report["error"]
    sleeper = await rpc.create("debug.sleep", {"seconds": 60})
    page = Page(browser, str(service.http.make_url("/")))

    # When the dashboard is opened
    await _in_thread(page.open)
    # Then it shows the tasks by state, the workers and the latest tasks, newest first
    await _in_thread(page.until, lambda: page.counts()["completed"] == "2", "counts never loaded")
    assert await _in_thread(page.counts) == {
        "pending": "0",
        "running": "1",
        "completed": "2",
        "failed": "1",
        "cancelled": "0",
    }
    assert await _in_thread(page.text, "#workers-alive") == "2"
    assert await _in_thread(page.text, "#workers-configured") == "2"
    assert await _in_thread(page.text, "#workers-busy") == "1"
    assert await _in_thread(page.rows) == [
        (sleeper["task_id"], "running"),
        (report["task_id"], "completed"),
        (failed["task_id"], "failed"),
        (analysis["task_id"], "completed"),
    ]

    # When a task is created elsewhere, the page shows it without a reload
    late = await rpc.create("debug.echo", {"value": "late", "seconds": 60})
    await _in_thread(
        page.until, lambda: page.rows()[0] == (late["task_id"], "running"), "no live refresh"
    )

    # When the person clicks the running sleeper, its detail opens
    await _in_thread(page.click, f'tr[data-task-id="{sleeper["task_id"]}"]')
    await _in_thread(page.until, lambda: page.detail("task_id") == sleeper["task_id"], "no detail")
    assert await _in_thread(page.detail, "type") == "debug.sleep"
    assert await _in_thread(page.detail, "status") == "running"
    assert await _in_thread(page.detail, "params") == '{\n  "seconds": 60\n}'
    # and a click on "Cancel task" cancels it on the server
    await _in_thread(page.click, "#cancel-task")
    await _in_thread(page.until, lambda: page.detail("status") == "cancelled", "cancel not shown")
    assert (await rpc.status(sleeper["task_id"]))["status"] == "cancelled"
    assert not await _in_thread(lambda: page.find("#cancel-task").is_displayed())

    # When the person filters on failed tasks and opens the failure
    await _in_thread(page.click, '.card[data-status="failed"]')
    await _in_thread(
        page.until, lambda: page.rows() == [(failed["task_id"], "failed")], "no filter"
    )
    assert await _in_thread(page.text, "#status-filter-text") == "failed only"
    await _in_thread(page.click, f'tr[data-task-id="{failed["task_id"]}"]')
    await _in_thread(page.until, lambda: page.detail("task_id") == failed["task_id"], "no detail")
    assert await _in_thread(page.detail, "error") == "ValueError\nbad data in post 3"

    # When the filter is cleared and the report task is opened, its report is linked
    await _in_thread(page.click, "#clear-filter")
    await _in_thread(page.until, lambda: len(page.rows()) == 5, "filter not cleared")
    await _in_thread(page.click, f'tr[data-task-id="{report["task_id"]}"]')
    await _in_thread(page.until, lambda: page.detail("task_id") == report["task_id"], "no detail")
    link = await _in_thread(page.find, "#report-link")
    assert await _in_thread(link.is_displayed)
    assert await _in_thread(link.get_attribute, "href") == str(
        service.http.make_url(f"/reports/{report['task_id']}")
    )
    # And nothing went wrong in the page
    assert await _in_thread(page.console_errors) == []
    await rpc.cancel(late["task_id"])


async def test_a_token_is_asked_for_when_the_server_needs_one(
    start_service: StartService, browser: webdriver.Chrome
) -> None:
    service = await start_service(token="s3cret")
    page = Page(browser, str(service.http.make_url("/")))
    await _in_thread(page.open)
    await _in_thread(
        page.until, lambda: page.find("#token-dialog").is_displayed(), "no token dialog"
    )
    # A wrong token is refused and said so
    await _in_thread(lambda: page.find("#token-input").send_keys("wrong\n"))
    await _in_thread(
        page.until, lambda: page.find("#token-error").is_displayed(), "no refusal shown"
    )
    # The right one opens the dashboard
    await _in_thread(lambda: page.find("#token-input").clear())
    await _in_thread(lambda: page.find("#token-input").send_keys("s3cret\n"))
    await _in_thread(
        page.until, lambda: not page.find("#token-dialog").is_displayed(), "dialog stayed"
    )
    await _in_thread(
        page.until, lambda: page.text("#connection-text").startswith("Live"), "not live"
    )
    assert await _in_thread(page.counts) == {
        "pending": "0",
        "running": "0",
        "completed": "0",
        "failed": "0",
        "cancelled": "0",
    }


async def test_page_and_assets_are_served_without_network(service: Service) -> None:
    page = await service.http.get("/")
    assert page.status == 200
    html = await page.text()
    assert 'src="/static/dashboard.js"' in html and 'href="/static/dashboard.css"' in html
    assert "http://" not in html and "https://" not in html
    for asset in ("/static/dashboard.js", "/static/dashboard.css"):
        response = await service.http.get(asset)
        assert response.status == 200
        body = await response.text()
        assert "http://" not in body and "https://" not in body, asset
