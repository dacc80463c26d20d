"""The official Python SDK (b24pysdk, from PyPI) against sipline over HTTPS, unchanged.

b24pysdk always speaks https; sipline's `--tls self-signed` CA goes in REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import gc
import time

import pytest
from b24pysdk import BitrixWebhook, Client
from b24pysdk.errors import BitrixAPIError

from tests.integration.conftest import FRESH_CLOUD_LINE
from tests.integration.server import SiplineProcess


@pytest.fixture
def client(tmp_path, monkeypatch):
    process = SiplineProcess(tmp_path / "data", "--tls", "self-signed").start()
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", process.printed["ca"])
        user_and_code = process.webhook.split("/rest/")[1].strip("/")
        yield Client(BitrixWebhook(domain=f"127.0.0.1:{process.port}", webhook_token=user_and_code))
        # The SDK's exceptions keep their HTTP response, and with it an open TLS socket, in a
        # reference cycle; collect it so the server does not wait for that client to hang up.
        gc.collect()
    finally:
        process.stop()


def test_all_six_sip_methods(client):
    sip = client.voximplant.sip
    added = sip.add(type="cloud", title="A & B", server="sip.example.invalid", login="100", password="s").result
    assert added["TITLE"] == "A & B" and isinstance(added["REG_ID"], int)
    office = sip.add(type="office", title="PBX", server="pbx.example.invalid", login="o", password="p").result
    assert office["INCOMING_LOGIN"] == f"sip{office['CONFIG_ID']}"

    page = sip.get(filter={"CONFIG_ID": [int(added["CONFIG_ID"]), int(office["CONFIG_ID"])], ">=REG_ID": 5},
                   sort="CONFIG_ID", order="ASC", start=0).response
    assert [row["CONFIG_ID"] for row in page.result] == [added["CONFIG_ID"]]
    assert page.total == 1 and page.next is None and page.time.duration >= 0

    assert sip.update(int(added["CONFIG_ID"]), title="Renamed").result == 1
    assert sip.get(filter={"%TITLE": "renamed"}).result[0]["CONFIG_ID"] == added["CONFIG_ID"]

    status = sip.status(added["REG_ID"]).result
    assert (status["STATUS_RESULT"], status["STATUS_CODE"], status["ERROR_MESSAGE"]) in FRESH_CLOUD_LINE

    assert sip.connector.status().result == {"FREE_MINUTES": 0, "PAID": True,
                                             "PAID_DATE_END": "2099-12-31T00:00:00+00:00"}

    assert sip.delete(int(added["CONFIG_ID"])).result == 1
    with pytest.raises(BitrixAPIError) as caught:
        sip.status(added["REG_ID"]).result
    assert (caught.value.error, caught.value.status_code) == ("REG_ID_NOT_FOUND", 400)


def test_errors_reach_the_sdk_with_code_and_status(client):
    with pytest.raises(BitrixAPIError) as caught:
        client.voximplant.sip.update(424242, title="x").result
    assert (caught.value.error, caught.value.status_code) == ("ERROR_NOT_FOUND", 404)
    with pytest.raises(BitrixAPIError) as caught:
        client.voximplant.sip.add(type="cloud", title="", server="bad host", login="u", password="p").result
    assert caught.value.error == "CHECK_FIELDS_ERROR"


def test_line_methods(client):
    line = client.voximplant.sip.add(type="office", title="", server="o.example.invalid", login="o",
                                     password="").result
    assert client.voximplant.line.outgoing.get().result == f"sip{line['CONFIG_ID']}"
    assert client.voximplant.line.outgoing.set("LINK_BASE_NUMBER").result == 1
    assert client.voximplant.line.outgoing.sip.set(config_id=int(line["CONFIG_ID"])).result == 1
    assert client.voximplant.line.get().result == {f"sip{line['CONFIG_ID']}": f"Office PBX ({line['CONFIG_ID']})"}


def test_the_telephony_pages(client):
    """docs/behaviour.md#url-get through the SDK's own voximplant.url.get: the dashboard's pages, over HTTPS."""
    urls = client.voximplant.url.get().result
    assert list(urls) == ["detail_statistics", "buy_connector", "edit_config", "lines"]
    assert urls["lines"].startswith("https://127.0.0.1:") and urls["lines"].endswith("/ui/")
    assert urls["edit_config"] == urls["lines"] + "lines/#CONFIG_ID#"


def test_call_batch_and_as_list_across_120_lines(client):
    """120 office lines made by call_batch (three batches of up to 50), read back by as_list()."""
    sip = client.voximplant.sip
    requests = {f"line{n}": sip.add(type="office", title=f"PBX {n:03d}", server="pbx.example.invalid",
                                    login=f"o{n}", password="p") for n in range(120)}
    made = {}
    names = list(requests)
    for first in range(0, 120, 50):
        batch = client.call_batch({name: requests[name] for name in names[first:first + 50]}).response
        assert not batch.result.result_error
        made.update(batch.result.result)
    assert len(made) == 120 and made["line0"]["TITLE"] == "PBX 000"
    listed = sip.get(sort="CONFIG_ID", order="ASC").as_list().result
    assert [row["TITLE"] for row in listed] == [f"PBX {n:03d}" for n in range(120)]
    halted = client.call_batch({"bad": sip.status(424242), "good": client.voximplant.line.get()}, halt=True).response
    assert "bad" in halted.result.result_error and "good" not in halted.result.result


def test_oauth_token_and_the_sdks_own_refresh(tmp_path, monkeypatch):
    """b24pysdk with an app's token: on 401 expired_token it calls /oauth/token/ itself and retries."""
    from b24pysdk import BitrixApp, BitrixToken
    from b24pysdk.api.requesters import BitrixOAuthRequester

    from tests.integration.operator import App

    process = SiplineProcess(tmp_path / "data", "--tls", "self-signed", "--access-token-lifetime", "2").start()
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", process.printed["ca"])
        monkeypatch.setattr(BitrixOAuthRequester, "_OAUTH_TOKEN_URL", f"https://127.0.0.1:{process.port}/oauth/token/")
        app = App(process, scheme="https")
        tokens = app.tokens()
        token = BitrixToken(domain=f"127.0.0.1:{process.port}", auth_token=tokens["access_token"],
                            refresh_token=tokens["refresh_token"],
                            bitrix_app=BitrixApp(client_id=app.client_id, client_secret=app.client_secret))
        sdk = Client(token)
        assert sdk.voximplant.sip.connector.status().result["PAID"] is True
        time.sleep(max(0.0, tokens["expires"] - time.time()) + 0.1)
        assert sdk.voximplant.sip.connector.status().result["PAID"] is True  # refreshed on the way
        assert token.auth_token != tokens["access_token"] and token.refresh_token != tokens["refresh_token"]
        line = sdk.voximplant.sip.add(type="office", title="app line", server="pbx.example.invalid", login="o",
                                      password="p").result
        assert [row["CONFIG_ID"] for row in sdk.voximplant.sip.get().result] == [line["CONFIG_ID"]]
        gc.collect()
    finally:
        process.stop()


def test_event_bind_get_and_unbind(client):
    """docs/behaviour.md#event-bind through the SDK's own event methods; the handler is never posted to (no line
    changes here), and 1.1.1.1 is globally reachable, as a handler must be without --allow-private-targets."""
    event = client.event
    assert event.bind("OnSiplineRegistrationChange", "https://1.1.1.1/b24", auth_type=1).result is True
    assert event.bind("onsiplinebindingchange", "https://1.1.1.1/b24", event_type="online").result is True
    assert event.bind("OnSiplineBindingChange", event_type="offline").result is True
    with pytest.raises(BitrixAPIError) as caught:
        event.bind("OnSiplineRegistrationChange", "https://1.1.1.1/b24", auth_type=1).result
    assert (caught.value.error, caught.value.status_code) == ("ERROR_CORE", 400)

    rows = event.get().result
    assert [(row["event"], row.get("handler"), row.get("auth_type"), row["offline"]) for row in rows] == [
        ("ONSIPLINEREGISTRATIONCHANGE", "https://1.1.1.1/b24", "1", 0),
        ("ONSIPLINEBINDINGCHANGE", "https://1.1.1.1/b24", "0", 0),
        ("ONSIPLINEBINDINGCHANGE", None, None, 1),
    ]
    handlers = event.get().values  # the SDK's own objects, built from the rows
    assert [(handler.event, handler.offline) for handler in handlers][-1] == ("ONSIPLINEBINDINGCHANGE", True)

    assert event.unbind("OnSiplineRegistrationChange", "https://1.1.1.1/b24").value == 1
    assert event.unbind("OnSiplineBindingChange", "https://1.1.1.1/b24", auth_type=5).value == 0
    assert event.unbind("OnSiplineBindingChange", event_type="offline").value == 1
    assert len(event.get().result) == 1
    assert client.events().result == ["OnSiplineRegistrationChange", "OnSiplineBindingChange"]
    batch = event.offline.get(clear=False).result  # clear=0: a process id, even for no records
    assert batch["events"] == [] and len(batch["process_id"]) == 32
