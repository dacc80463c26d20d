import re

from sipline.rest.envelope import ListResult, local_datetime, local_iso, render_xml, success_body, time_block
from sipline.rest.routes import masked, parse_rest_path


def test_time_block():
    block = time_block(100.25, 101.5, 0.5)
    assert block["duration"] == 1.25 and block["processing"] == 0.5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", block["date_start"])
    assert local_iso(100.25) == local_iso(100.75) != local_iso(101.0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", local_datetime(100.0))


def test_list_envelope():
    assert success_body(ListResult([1], 3, 1), {}) == {"result": [1], "total": 3, "next": 1, "time": {}}
    assert "next" not in success_body(ListResult([1], 1, None), {})


def test_xml():
    xml = render_xml({"result": {"a": [1, None, True], "reg1": "x<&", "0bad": "y"}, "time": {"s": 1.5}}).decode()
    assert xml == (
        '<?xml version="1.0" encoding="utf-8"?><response><result><a><item>1</item><item></item><item>1</item></a>'
        '<reg1>x&lt;&amp;</reg1><item key="0bad">y</item></result><time><s>1.5</s></time></response>'
    )


def test_routes():
    route = parse_rest_path("//rest/1/abc//Voximplant.Sip.Get.json/")
    assert (route.method, route.transport, route.webhook) == ("voximplant.sip.get", "json", ("1", "abc"))
    assert parse_rest_path("/rest/batch.xml").transport == "xml"
    assert masked("/rest/1/secretcode/x") == "/rest/1/***/x"
    assert masked("/rest/x") == "/rest/x"


def test_masked_hides_the_code_on_every_rest_path_that_may_carry_one():
    assert masked("/rest/1/secretcode/m/extra") == "/rest/1/***/m/extra"
    assert masked("/Rest/1/secretcode/m") == "/Rest/1/***/m"
    assert masked("/REST/1/secretcode") == "/REST/1/***"
    assert masked("//rest//12//secretcode//m/") == "//rest//12//***//m/"
    assert masked("/rest/secretcode/m") == "/rest/***/***"  # no user ID: either may be the code
    assert masked("/rest/1/secretcode.json/m") == "/rest/1/***/m"
    assert masked("/b24/Rest/1/secretcode/m") == "/b24/Rest/1/***/m"  # a prefix a proxy left
    assert masked("/oauth/token/") == "/oauth/token/" and masked("/healthz") == "/healthz"
