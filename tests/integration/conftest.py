from __future__ import annotations

import httpx
import pytest

from tests.integration.server import SiplineProcess

# What sip.status may say of a cloud line on sip.example.invalid just after its sip.add: wait, until
# its first REGISTER, due within 5 s (docs/behaviour.md#reg-lifecycle), finds no such host.
FRESH_CLOUD_LINE = (("wait", 0, ""), ("in_progress", 0, ""), ("error", 502, "Unable to resolve hostname"))


class Api:
    """Raw HTTP against one webhook: `api.call("voximplant.sip.add", json={...})`."""

    def __init__(self, webhook: str, **client_options) -> None:
        self.webhook = webhook
        self.client = httpx.Client(timeout=10, follow_redirects=False, **client_options)

    def call(self, method: str, *, json=None, data=None, params=None, http_method: str = "POST", **kw):
        return self.client.request(http_method, self.webhook + method, json=json, data=data, params=params, **kw)

    def result(self, method: str, **kw):
        response = self.call(method, **kw)
        assert response.status_code == 200, response.text
        return response.json()["result"]

    def add(self, **fields) -> dict:
        body = {"SERVER": "sip.example.invalid", "LOGIN": "100", "PASSWORD": "secret", **fields}
        return self.result("voximplant.sip.add", json=body)


@pytest.fixture
def sipline(tmp_path):
    process = SiplineProcess(tmp_path / "data").start()
    yield process
    process.stop()


@pytest.fixture
def api(sipline) -> Api:
    client = Api(sipline.webhook)
    yield client
    client.client.close()
