"""The pure rules of the events side: names per scope (docs/behaviour.md#event-names), the handler URL check
(docs/behaviour.md#event-bind, with a resolver given by the test), filters and orders of the offline queue
(docs/behaviour.md#event-offline)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from sipline.events.errors import InvalidArgument, UnsupportedScheme, WrongHandlerUrl
from sipline.events.names import bindable, listed
from sipline.events.offline_query import parse_filter, parse_ids, parse_message_ids, parse_order
from sipline.events.targets import check_handler_url
from sipline.store.event_records import Comparison, OfflineField, OfflineTerm

REG, BIND, UNINSTALL = "OnSiplineRegistrationChange", "OnSiplineBindingChange", "OnAppUninstall"
TELEPHONY = frozenset({"telephony"})


def test_names_by_scope():
    assert listed(TELEPHONY, app=True) == [REG, BIND, UNINSTALL]
    assert listed(TELEPHONY, app=False) == [REG, BIND]
    assert listed(frozenset({"crm"}), app=True) == [UNINSTALL]
    assert listed(frozenset(), app=True, scope="Telephony") == [REG, BIND]  # whoever asks
    assert listed(TELEPHONY, app=True, scope="") == [UNINSTALL]
    assert listed(frozenset(), app=False, full=True) == [REG, BIND, UNINSTALL]
    assert bindable("onsiplineregistrationchange", TELEPHONY, app=False).name == "ONSIPLINEREGISTRATIONCHANGE"
    assert bindable(REG, frozenset({"crm"}), app=True) is None
    assert bindable(UNINSTALL, TELEPHONY, app=False) is None
    assert bindable("x" * 10_000, TELEPHONY, app=True) is None


def check(url: str, allow_private: bool = False, answers: dict[str, list[str]] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in (answers or {}):
            raise WrongHandlerUrl(f"HANDLER's host {host} does not resolve")
        return answers[host]

    return asyncio.run(check_handler_url(url, allow_private, resolve))


def test_handler_url_targets():
    target = check("HTTPS://Hooks.Example:8443/path?q=1", answers={"hooks.example": ["1.1.1.1", "2606:4700::1"]})
    assert (target.scheme, target.host, target.port, target.addresses) == (
        "https", "hooks.example", 8443, ("1.1.1.1", "2606:4700::1"))
    assert check("http://1.1.1.1/").port == 80
    assert check("http://127.0.0.1:8080/x", allow_private=True).addresses == ("127.0.0.1",)
    with pytest.raises(WrongHandlerUrl, match=r"leads to 10\.0\.0\.1,"):  # one private address refuses the name
        check("http://mixed.example/", answers={"mixed.example": ["1.1.1.1", "10.0.0.1"]})
    with pytest.raises(WrongHandlerUrl, match="does not resolve"):
        check("http://nowhere.example/", allow_private=True)
    with pytest.raises(WrongHandlerUrl, match="leads to 64:ff9b::a00:1"):  # NAT64 of 10.0.0.1
        check("http://[64:ff9b::a00:1]/")
    with pytest.raises(WrongHandlerUrl, match=r"leads to 224\.0\.0\.1"):  # never multicast, allowed private or not
        check("http://224.0.0.1/", allow_private=True)


@pytest.mark.parametrize("url", ["http://", "http://exa_mple.com/", "http://-a.example/", "http://1.1.1.1:0/",
                                 "http://[::1/", "http://u@1.1.1.1/", "http://1.1.1.1/\t", "http://\u00e9.example/",
                                 "http://1.1.1.1:http/"])
def test_malformed_handler_urls(url):
    with pytest.raises(WrongHandlerUrl):
        check(url, allow_private=True)


@pytest.mark.parametrize("url", ["ftp://1.1.1.1/", "javascript:alert(1)", "/relative", "1.1.1.1"])
def test_other_schemes(url):
    with pytest.raises(UnsupportedScheme):
        check(url, allow_private=True)


GET_FIELDS = (OfflineField.ID, OfflineField.TIMESTAMP_X, OfflineField.EVENT_NAME, OfflineField.MESSAGE_ID)


def test_filter_terms():
    terms = parse_filter({"ID": "5", "!=event_name": ["onx", "ony"], ">=TIMESTAMP_X": "2026-03-16T12:00:00+02:00",
                          "<ID": 9, "!MESSAGE_ID": "m"}, GET_FIELDS)
    moment = datetime.fromisoformat("2026-03-16T12:00:00+02:00").timestamp()
    assert terms == (
        OfflineTerm(OfflineField.ID, Comparison.EQUAL, (5,)),
        OfflineTerm(OfflineField.EVENT_NAME, Comparison.NOT_EQUAL, ("ONX", "ONY")),
        OfflineTerm(OfflineField.TIMESTAMP_X, Comparison.GREATER_OR_EQUAL, (moment,)),
        OfflineTerm(OfflineField.ID, Comparison.LESS, (9,)),
        OfflineTerm(OfflineField.MESSAGE_ID, Comparison.NOT_EQUAL, ("m",)),
    )
    assert parse_filter(None, GET_FIELDS) == parse_filter([], GET_FIELDS) == ()
    assert parse_filter({"ERROR": "Y"}, tuple(OfflineField))[0].values == (True,)


@pytest.mark.parametrize("raw", [{"PROCESS_ID": "x"}, {"ID": True}, {"ID": 2**64}, {"ID": []}, {">ID": [1, 2]},
                                 {"TIMESTAMP_X": 5}, {"EVENT_NAME": 5}, {"ERROR": 2}, {"~ID": 1}, "ID", [1],
                                 {f"k{n}": 1 for n in range(1001)}])
def test_filters_refused(raw):
    with pytest.raises(InvalidArgument) as caught:
        parse_filter(raw, GET_FIELDS)
    assert caught.value.argument == "FILTER"


def test_orders_and_lists():
    default = ((OfflineField.TIMESTAMP_X, False),)
    assert parse_order(None, GET_FIELDS, default) == default
    assert parse_order({"id": "desc", "EVENT_NAME": "Asc"}, GET_FIELDS, default) == (
        (OfflineField.ID, True), (OfflineField.EVENT_NAME, False))
    for raw in ({"ID": "up"}, {"ID": ["ASC"]}, {"ERROR": "ASC"}, "ID"):
        with pytest.raises(InvalidArgument):
            parse_order(raw, GET_FIELDS, default)
    assert parse_ids(["3", 4]) == [3, 4] and parse_ids([]) is None and parse_ids(None) is None
    assert parse_message_ids({"a": " " + "f" * 32}) == ["f" * 32]
    for raw in (["0"], [-1], "x", [None], ["a"], [True]):
        with pytest.raises(InvalidArgument):
            parse_ids(raw)
    for raw in (["short"], [1], "f" * 32, [None], ["f" * 33]):
        with pytest.raises(InvalidArgument):
            parse_message_ids(raw)
