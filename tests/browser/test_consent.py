"""The OAuth consent page in a real browser (docs/behaviour.md#oauth-consent): an application sends the browser to
`/oauth/authorize/`, the signed-in user sees the app and clicks Allow, and the browser lands on the app's handler
with a code of that user's (the page's CSP lets its form lead there); Deny lands there with `error=access_denied`."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.harness import dashboard_link, wait_for
from tests.integration.operator import App, Handler, cli


def landed_query(browser, handler: Handler) -> dict[str, str]:
    WebDriverWait(browser, 5).until(lambda driver: driver.current_url.startswith(handler.url + "?"))
    return {name: values[0] for name, values in parse_qs(urlsplit(browser.current_url).query).items()}


def test_allow_and_deny_reach_the_handler(sipline, browser):
    handler = Handler()
    try:
        app = App(sipline, "--name", "Call tracker", "--handler", handler.url)
        clerk = cli(sipline.data_dir, "user", "create", "--name", "Clerk")
        browser.get(dashboard_link(sipline, "--user", clerk))
        browser.get(f"{sipline.base_url}/oauth/authorize/?client_id={app.client_id}&state=st1&user_id=1")
        wait_for(browser, "#app-name", text="Call tracker")
        wait_for(browser, "#allow").click()
        answer = landed_query(browser, handler)
        assert answer["state"] == "st1"
        tokens = app.token(grant_type="authorization_code", code=answer["code"]).json()
        assert tokens["user_id"] == int(clerk)

        browser.get(f"{sipline.base_url}/oauth/authorize/?client_id={app.client_id}&state=st2")
        wait_for(browser, "#deny").click()
        assert landed_query(browser, handler) == {"error": "access_denied", "state": "st2"}
    finally:
        handler.close()
