"""The ``unifapi`` connection in Airflow 3's UI, driven in Chromium: form, save, Test button, masked key.

Run by ``make ui-test`` (``scripts/ui_test.sh``) against a real api-server and the sandbox on
127.0.0.1. The tests run in order on one page: the connection the second one saves is the one the
later ones test and reopen. Screenshots go to ``docs/img/`` for the docs. No assertion message ever
holds the API key (request bodies are picked apart before anything is compared).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from airflow_provider_unifapi.client.config import EXTRA_FIELDS
from airflow_provider_unifapi.get_provider_info import field_help
from tests.ui.conftest import Secret

pytestmark = pytest.mark.ui

CONN_ID = "unifapi_sandbox"
NO_PORT_CONN_ID = "unifapi_port_in_url"


def open_add_form(page: Any, conn_id: str) -> Any:
    page.goto("/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=connection_id]").fill(conn_id)
    dialog.get_by_role("combobox").fill("UnifAPI")
    page.get_by_role("option", name="UnifAPI", exact=True).click()
    expect(dialog.locator("input[name=host]")).to_be_visible()
    return dialog


def save(page: Any, dialog: Any) -> dict[str, Any]:
    """Press Save; return the connection the UI posted (the caller must not print it: it has the key)."""
    with page.expect_request(
        lambda r: r.method == "POST" and urlsplit(r.url).path == "/api/v2/connections"
    ) as posted:
        dialog.get_by_role("button", name="Save").click()
    response = posted.value.response()
    assert response is not None and response.status == 201
    body: dict[str, Any] = json.loads(posted.value.post_data or "{}")
    expect(page.get_by_role("dialog")).to_have_count(0)
    return body


def press_test(page: Any, conn_id: str) -> Any:
    row = page.get_by_role("row").filter(has_text=conn_id)
    with page.expect_response(lambda r: urlsplit(r.url).path == "/api/v2/connections/test") as answer:
        row.get_by_role("button", name="Test Connection").click()
    return answer.value


def credits_charged(sandbox_url: str) -> int:
    ledger = httpx.get(f"{sandbox_url}/_sandbox/ledger", timeout=10).raise_for_status().json()
    return int(ledger["totals"]["credits_charged"])


def test_form_shows_every_field_labelled_with_help_and_range(page: Any, screenshots: Path) -> None:
    dialog = open_add_form(page, CONN_ID)
    for label in ("Description", "Base URL", "Port", "API key"):
        expect(dialog.get_by_text(label, exact=True)).to_be_visible()
    for hidden in ("login", "schema"):  # unused standard fields stay hidden
        expect(dialog.locator(f"input[name={hidden}]")).to_have_count(0)
    expect(dialog.locator("input[name=host]")).to_have_attribute("placeholder", "https://api.unifapi.com")
    expect(dialog.locator("input[name=password]")).to_have_attribute("type", "password")
    dialog.screenshot(path=screenshots / "connection-form.png")

    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for spec in EXTRA_FIELDS:
        expect(dialog.get_by_text(spec.label, exact=True)).to_be_visible()
        # The help text carries the range and the default (Airflow 3's form shows no schema bounds).
        expect(dialog.get_by_text(field_help(spec), exact=True)).to_be_visible()
        expect(dialog.locator(f"input[name=element_{spec.name}]")).to_have_count(1)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": 1900})  # the whole dialog in one picture
    try:
        dialog.screenshot(path=screenshots / "connection-extra-fields.png")
    finally:
        page.set_viewport_size(size)
    page.keyboard.press("Escape")


def test_saving_stores_only_what_the_user_set(page: Any, sandbox_url: str, api_key: Secret) -> None:
    dialog = open_add_form(page, CONN_ID)
    sandbox = urlsplit(sandbox_url)
    dialog.locator("input[name=host]").fill(f"http://{sandbox.hostname}")
    dialog.locator("input[name=port]").fill(str(sandbox.port))
    dialog.locator("input[name=password]").fill(api_key.reveal())
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    dialog.locator("input[name=element_max_retries]").fill("3")
    body = save(page, dialog)
    sent_key_is_the_key = body.pop("password") == api_key.reveal()
    assert sent_key_is_the_key
    assert (body["host"], body["port"]) == (f"http://{sandbox.hostname}", sandbox.port)
    extra = json.loads(body["extra"])
    assert set(extra) == {spec.name for spec in EXTRA_FIELDS}  # the form posts every field...
    assert {k: v for k, v in extra.items() if v is not None} == {"max_retries": 3}  # ...unset ones as null
    expect(page.get_by_role("row").filter(has_text=CONN_ID)).to_be_visible()


def test_test_button_shows_success(page: Any, sandbox_url: str, screenshots: Path) -> None:
    before = credits_charged(sandbox_url)
    answer = press_test(page, CONN_ID)
    assert answer.status == 200
    result = answer.json()
    assert result["status"] is True, result["message"]
    toast = page.get_by_role("status").filter(has_text="Test Connection Successful")
    expect(toast).to_contain_text(f"API key accepted by {sandbox_url} (hashtag search")
    expect(toast).to_contain_text("this check cost 1 credit(s)")
    assert credits_charged(sandbox_url) - before == 1
    page.screenshot(path=screenshots / "connection-test-success.png")


def test_reopened_connection_masks_the_key(
    page: Any, sandbox_url: str, api_key: Secret, screenshots: Path
) -> None:
    page.goto("/connections")
    page.get_by_role("row").filter(has_text=CONN_ID).get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    password = dialog.locator("input[name=password]")
    expect(password).to_have_attribute("type", "password")
    shown_is_the_key = password.input_value() == api_key.reveal()
    assert not shown_is_the_key, "the edit form holds the real API key"
    key_in_page = api_key.reveal() in page.content()
    assert not key_in_page, "the API key is in the page"
    expect(dialog.locator("input[name=port]")).to_have_value(str(urlsplit(sandbox_url).port))
    dialog.screenshot(path=screenshots / "connection-edit.png")
    page.keyboard.press("Escape")


def test_without_a_port_airflow_refuses_the_test_and_the_cli_works(
    page: Any, sandbox_url: str, api_key: Secret
) -> None:
    """Why the Port field is shown: with the port only in the Base URL, Airflow 3.3.2's UI sends
    ``port: 0``, the stored port is NULL, and the API server answers 400 before the hook runs."""
    dialog = open_add_form(page, NO_PORT_CONN_ID)
    dialog.locator("input[name=host]").fill(sandbox_url)
    dialog.locator("input[name=password]").fill(api_key.reveal())
    body = save(page, dialog)
    assert body.get("port") is None
    before = credits_charged(sandbox_url)
    answer = press_test(page, NO_PORT_CONN_ID)
    assert answer.status == 400
    assert "differs from the stored connection" in answer.json()["detail"]
    expect(page.get_by_role("status").filter(has_text="Test Connection Failed")).to_be_visible()
    assert credits_charged(sandbox_url) == before  # refused by Airflow before the hook ran
    # The documented alternative: `airflow connections test` reads the stored connection as it is.
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "test", NO_PORT_CONN_ID],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    key_leaked = api_key.reveal() in done.stdout + done.stderr
    assert not key_leaked
    assert done.returncode == 0 and "Connection success!" in done.stdout, done.stdout[-2000:]
    assert credits_charged(sandbox_url) - before == 1  # the hook's check really ran: 1 credit
