"""A line's page in a real browser (docs/behaviour.md#dashboard-line): edit a title, a refused edit and its
error, delete after confirming, copy the SIP trace."""

from __future__ import annotations

import httpx
from selenium.webdriver.common.by import By

from tests.browser.harness import add_line, clipboard_text, dashboard_link, wait_for
from tests.peers.sipp import SippRegistrar


def open_line(browser, process, config_id: int) -> None:
    browser.get(dashboard_link(process))
    wait_for(browser, "h1", text="SIP lines")
    browser.find_element(By.CSS_SELECTOR, f"#line-{config_id} a").click()
    wait_for(browser, "#edit-line")


def titles(process) -> list[str]:
    answer = httpx.post(process.webhook + "voximplant.sip.get", timeout=10)
    return [line["TITLE"] for line in answer.json()["result"]]


def test_edit_a_title_and_see_a_refused_edit_with_its_error(sipline, browser):
    line = add_line(sipline, TITLE="Main trunk")
    add_line(sipline, TITLE="Backup trunk")
    open_line(browser, sipline, line["ID"])
    title = browser.find_element(By.NAME, "title")
    title.clear()
    title.send_keys("Front desk")
    browser.find_element(By.ID, "save-line").click()
    wait_for(browser, "[role=status]", text="Saved")
    assert "Front desk" in browser.find_element(By.TAG_NAME, "h1").text
    assert sorted(titles(sipline)) == ["Backup trunk", "Front desk"]

    title = browser.find_element(By.NAME, "title")
    title.clear()
    title.send_keys("Backup trunk")  # another line's: sip.update refuses it
    browser.find_element(By.ID, "save-line").click()
    error = wait_for(browser, "#edit-error", text="already registered")
    assert "The specified connection name is already registered in the system" in error.text
    assert browser.find_element(By.NAME, "title").get_attribute("value") == "Backup trunk"  # what was typed
    assert sorted(titles(sipline)) == ["Backup trunk", "Front desk"]  # nothing changed


def test_delete_asks_first_and_a_cancelled_delete_deletes_nothing(sipline, browser):
    line = add_line(sipline, TITLE="Old trunk")
    open_line(browser, sipline, line["ID"])
    browser.find_element(By.ID, "delete-line").click()
    prompt = browser.switch_to.alert
    assert "Old trunk" in prompt.text
    prompt.dismiss()
    assert titles(sipline) == ["Old trunk"]
    browser.find_element(By.ID, "delete-line").click()
    browser.switch_to.alert.accept()
    wait_for(browser, "[role=status]", text="deleted")
    assert titles(sipline) == [] and "Old trunk" not in browser.find_element(By.ID, "line-rows").text


def test_copy_the_sip_trace(tmp_path, registering, browser):
    with SippRegistrar(tmp_path / "sipp", "ok") as provider:
        line = add_line(registering, TITLE="Traced", SERVER=f"127.0.0.1:{provider.port}", LOGIN="trunk1")
        browser.get(dashboard_link(registering))
        wait_for(browser, f"#line-{line['ID']} .status.ok", timeout=10)
        browser.find_element(By.CSS_SELECTOR, f"#line-{line['ID']} a").click()
        trace = wait_for(browser, "#trace", text="REGISTER sip:")
        browser.find_element(By.CSS_SELECTOR, "button[data-copy=trace]").click()
        wait_for(browser, "button[data-copy=trace]", text="Copied")
        copied = clipboard_text(browser)
        assert copied == trace.text or copied.strip() == trace.text.strip()
        assert "SIP/2.0 200" in copied and "secret" not in copied
