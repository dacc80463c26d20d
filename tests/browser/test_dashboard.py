"""The dashboard in a real browser (docs/behaviour.md#dashboard): signing in by link, the lines and a status
change arriving without a reload, signing out; a used or expired link, a change without its CSRF token, and a
user without the right, all refused."""

from __future__ import annotations

import httpx
from selenium.webdriver.common.by import By

from tests.browser.harness import add_line as add
from tests.browser.harness import dashboard_link, wait_for
from tests.integration.operator import cli
from tests.peers.sipp import SippRegistrar
from tests.stores import execute


def status_of(browser, config_id: int) -> str:
    return browser.find_element(By.ID, f"line-{config_id}").get_attribute("data-status")


def test_sign_in_by_link_see_the_lines_and_watch_a_status_change_arrive_without_reload(tmp_path, registering,
                                                                                         browser):
    with SippRegistrar(tmp_path / "ok", "ok") as accepting, SippRegistrar(tmp_path / "no", "403") as refusing:
        line = add(registering, TITLE="Main trunk", SERVER=f"127.0.0.1:{accepting.port}", LOGIN="trunk1")
        add(registering, TYPE="office", TITLE="Office PBX")
        browser.get(registering.printed["dashboard"])
        wait_for(browser, "h1", text="SIP lines")
        assert browser.current_url == f"{registering.base_url}/ui/"  # the token is not left in the address bar
        wait_for(browser, f"#line-{line['ID']} .status.ok", text="Registered", timeout=10)
        wait_for(browser, "#line-rows", text="Office PBX")
        browser.execute_script("window.notReloaded = true")
        moved = httpx.post(registering.webhook + "voximplant.sip.update", timeout=10,
                           json={"CONFIG_ID": line["ID"], "SERVER": f"127.0.0.1:{refusing.port}"})
        assert moved.status_code == 200, moved.text
        row = wait_for(browser, f"#line-{line['ID']} .status.bad", text="Failing", timeout=15)
        assert "403" in browser.find_element(By.ID, f"line-{line['ID']}").text and row.is_displayed()
        assert browser.execute_script("return window.notReloaded") is True


def test_sign_out_ends_the_session(sipline, browser):
    add(sipline, TITLE="Main trunk")
    browser.get(dashboard_link(sipline))
    wait_for(browser, "#line-rows", text="Main trunk")
    browser.find_element(By.ID, "sign-out").click()
    wait_for(browser, "body", text="You are signed out")
    browser.get(f"{sipline.base_url}/ui/")
    wait_for(browser, "body", text="sipline dashboard-link")
    assert "Main trunk" not in browser.page_source


def test_a_used_link_and_an_expired_link_are_refused(sipline, browser):
    add(sipline, TITLE="Main trunk")
    used = dashboard_link(sipline)
    assert httpx.get(used, timeout=10).status_code == 303  # someone else opened it first
    browser.get(used)
    wait_for(browser, "body", text="This link does not work")
    expired = dashboard_link(sipline)
    execute(sipline.data_dir, "UPDATE dashboard_link SET expires_at = expires_at - 600")  # ten minutes later
    browser.get(expired)
    wait_for(browser, "body", text="This link does not work")
    browser.get(f"{sipline.base_url}/ui/")
    wait_for(browser, "body", text="sipline dashboard-link")
    assert "Main trunk" not in browser.page_source


def test_a_change_without_its_csrf_token_is_refused(sipline, browser):
    browser.get(dashboard_link(sipline))
    wait_for(browser, "h1", text="SIP lines")
    browser.execute_script("document.querySelector('form.signout input[name=csrf]').remove()")
    browser.find_element(By.ID, "sign-out").click()
    wait_for(browser, "[role=alert]", text="CSRF")
    browser.get(f"{sipline.base_url}/ui/")
    wait_for(browser, "h1", text="SIP lines")  # still signed in: the forged sign-out changed nothing


def test_a_user_without_the_right_sees_nothing(sipline, browser):
    add(sipline, TITLE="Main trunk")
    clerk = cli(sipline.data_dir, "user", "create", "--name", "Clerk")
    browser.get(dashboard_link(sipline, "--user", clerk))
    wait_for(browser, "[role=alert]", text="no right")
    assert "Main trunk" not in browser.page_source
    assert not browser.find_elements(By.CSS_SELECTOR, "nav a")
