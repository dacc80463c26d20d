"""`voximplant.url.get` over real HTTP (docs/behaviour.md#url-get): Bitrix24's telephony pages as the
dashboard's pages of the portal the call was made at, for any caller with the telephony scope."""

from __future__ import annotations

import httpx

from tests.integration.dashboard import signed_in
from tests.integration.operator import App, call, cli, error, hook_call, result

KEYS = ["detail_statistics", "buy_connector", "edit_config", "lines"]


def pages(base: str) -> dict[str, str]:
    return {"detail_statistics": f"{base}/ui/providers", "buy_connector": f"{base}/ui/",
            "edit_config": f"{base}/ui/lines/#CONFIG_ID#", "lines": f"{base}/ui/"}


def test_the_dashboard_pages_of_the_portal_called(sipline):
    base = f"http://127.0.0.1:{sipline.port}"
    urls = result(httpx.post(sipline.webhook + "voximplant.url.get"))
    assert list(urls) == KEYS and urls == pages(base)
    assert result(httpx.get(sipline.webhook + "voximplant.url.get.json")) == urls
    assert result(call(sipline, "voximplant.url.get", params={"auth": App(sipline).tokens()["access_token"]})) == urls

    batch = result(httpx.post(sipline.webhook + "batch", json={"cmd": {"urls": "voximplant.url.get"}}))
    assert batch["result"]["urls"] == urls

    hook_b = cli(sipline.data_dir, "portal", "create", "--domain", "b.example").splitlines()[-1].split(": ")[1]
    at_b = result(hook_call(hook_b, sipline, "voximplant.url.get", host="b.example"))
    assert at_b == pages(f"http://b.example:{sipline.port}")

    line = result(httpx.post(sipline.webhook + "voximplant.sip.add", json={
        "TYPE": "office", "TITLE": "Desk", "SERVER": "pbx.example.invalid", "LOGIN": "o", "PASSWORD": "p"}))
    with signed_in(sipline) as client:
        lines = client.get(urls["lines"].removeprefix(base))
        assert lines.status_code == 200 and lines.headers["content-type"].startswith("text/html")
        edit = client.get(urls["edit_config"].replace("#CONFIG_ID#", line["CONFIG_ID"]).removeprefix(base))
        assert edit.status_code == 200 and "Desk" in edit.text  # the line's page
        providers = client.get(urls["detail_statistics"].removeprefix(base))
        assert providers.status_code == 200 and providers.headers["content-type"].startswith("text/html")


def test_no_right_is_needed_but_the_scope_is(sipline):
    """Bitrix24 lets everyone call it [D]; the lines methods need "Manage numbers — modify"."""
    plain = cli(sipline.data_dir, "user", "create", "--name", "Plain")
    hook = cli(sipline.data_dir, "webhook", "create", "--user", plain)
    assert error(httpx.post(hook + "voximplant.sip.get")) == (403, "ACCESS_DENIED")
    assert result(httpx.post(hook + "voximplant.url.get"))["lines"] == f"http://127.0.0.1:{sipline.port}/ui/"
    user_only = cli(sipline.data_dir, "webhook", "create", "--scope", "user")
    assert error(httpx.post(user_only + "voximplant.url.get")) == (403, "insufficient_scope")
