"""The dashboard in a real headless browser (Debian's chromium, driven by playwright).

Skips when no chromium is installed, unless CI=true, where it fails (.ci/install-browser installs
it). Never downloads a browser.
"""

from __future__ import annotations

import os
import shutil

import openai
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway import appkeys
from gateway.admin.app import create_admin_app
from gateway.config import Settings
from tests.conftest import AiohttpServer
from tests.support.journal_helpers import wait_for_records

TOKEN = "dashboard-test-token"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "no chromium on PATH (run .ci/install-browser)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


async def test_dashboard_shows_live_records_and_detail(
    aiohttp_server: AiohttpServer,
    gateway: TestServer,
    settings: Settings,
    client: openai.AsyncOpenAI,
    redis: Redis,
) -> None:
    executable = chromium_path()
    from playwright.async_api import async_playwright

    assert gateway.app is not None
    admin = await aiohttp_server(
        create_admin_app(settings.replace(admin_token=TOKEN), gateway.app[appkeys.METRICS])
    )
    first = await client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "first"}]
    )
    await wait_for_records(redis, 1)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(str(admin.make_url("/admin/")) + f"#token={TOKEN}")
            first_id = first.headers["x-request-id"]
            row = page.locator(f"tr[data-request-id='{first_id}']")
            await row.wait_for(timeout=10_000)
            assert await page.locator("#t-requests").inner_text() == "1"
            # Live: a request made after the page opened shows up without a reload.
            second = await client.chat.completions.with_raw_response.create(
                model="gpt-test", messages=[{"role": "user", "content": "second"}]
            )
            second_id = second.headers["x-request-id"]
            await page.locator(f"tr[data-request-id='{second_id}']").wait_for(timeout=10_000)
            assert await page.locator("#chart-latency polyline").count() == 3
            await row.click()
            detail = page.locator("#detail-body")
            await detail.wait_for(state="visible", timeout=10_000)
            text = await detail.inner_text()
            assert first_id in text
            assert '"answered": "gpt-test-2024"' in text
            await page.screenshot(path=str(settings.var_path.parent / "dashboard.png"))
            assert errors == []
        finally:
            await browser.close()
