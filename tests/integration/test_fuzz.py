"""Arbitrary parameters at every method, in every encoding and with every kind of credentials: always an
answer in the wire format (the Bitrix24 envelope, in JSON or XML), never a 5xx, and the server stays healthy.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ElementTree
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipline.rest.registry import METHODS
from tests.integration.operator import App
from tests.integration.server import SiplineProcess
from tests.integration.dashboard import csrf, signed_in

NAMES = ["TYPE", "TITLE", "SERVER", "LOGIN", "PASSWORD", "CONFIG_ID", "REG_ID", "FILTER", "SORT", "ORDER", "start",
         "LINE_ID", "filter", "config_id", "auth", "state"]
FILTER_KEYS = st.sampled_from(["", "!", "=", ">", "<=", "><", "!><", "%", "!%", "?", "@", "~", "!!"]).flatmap(
    lambda op: st.sampled_from(["CONFIG_ID", "TITLE", "REG_ID", "PASSWORD", "APP_ID", "NOPE", ""]).map(
        lambda field: op + field
    )
)
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=30) | st.sampled_from(["cloud", "office", "sip.example.invalid", "ASC", "DESC", "1"]))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FILTER_KEYS | st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
params = st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=10), values, max_size=7)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = SiplineProcess(tmp_path_factory.mktemp("fuzz"), "--max-cloud-lines", "1000").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def webhook(server):
    return server.webhook


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=10) as http:
        yield http


def check(response: httpx.Response) -> dict | ElementTree.Element:
    """The envelope of docs/behaviour.md#rest-envelope in the format asked for; its body, as JSON or as the XML root."""
    assert response.status_code < 500, response.text
    kind = response.headers["content-type"]
    assert kind.startswith(("application/json", "text/xml")), kind
    if kind.startswith("text/xml"):
        root = ElementTree.fromstring(response.content)
        names = {child.tag for child in root}
        assert root.tag == "response" and ({"result", "time"} <= names or {"error", "error_description"} <= names)
        assert (response.status_code == 200) == ("result" in names), response.text
        return root
    body = response.json()
    assert ("result" in body and "time" in body) or ("error" in body and "error_description" in body), body
    assert (response.status_code == 200) == ("result" in body), body
    return body


@settings(max_examples=400, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(sorted(METHODS)), body=params)
def test_json_parameters(webhook, client, method, body):
    check(client.post(webhook + method, json=body))


@settings(max_examples=300, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(sorted(METHODS)), query=st.binary(max_size=120),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", "multipart/form-data",
                                     "multipart/form-data; boundary=b", "text/plain", ""]))
def test_raw_bodies_and_query_strings(webhook, client, method, query, content_type):
    check(client.post(webhook + method, content=query, headers={"content-type": content_type}))
    check(client.get(webhook + method + "?" + quote(query, safe="=&[]%+")))


@settings(max_examples=200, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="?#\x7f",
                                          exclude_categories=["Cc"]),
                    max_size=60))
def test_arbitrary_paths(webhook, client, path):
    base = webhook.split("/rest/")[0]
    check(client.get(f"{base}/rest/{path}"))
    check(client.post(f"{webhook}{path}"))


# -- every encoding of the same parameters -------------------------------------------------------------------

SUFFIXES = st.sampled_from(["", ".json", ".xml", ".JSON", ".XML", "/", ".xml/"])
FUZZ = settings(max_examples=250, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def php_pairs(value: object, name: str) -> list[tuple[str, str]]:
    """`FILTER[%TITLE][]=x`: the (name, value) pairs PHP's http_build_query makes of a nested value."""
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in php_pairs(item, f"{name}[{key}]")]
    if isinstance(value, list):
        return [pair for item in value for pair in php_pairs(item, f"{name}[]")]
    if value is None or value is False:
        return [(name, "")]
    return [(name, "1" if value is True else str(value))]


def form(pairs: list[tuple[str, str]]) -> str:
    return "&".join(quote(name, safe="[]") + "=" + quote(value, safe="") for name, value in pairs)


def multipart(pairs: list[tuple[str, str]], boundary: str = "fuzz-b0undary") -> bytes:
    """RFC 7578, names escaped as browsers escape them (`"` and CR/LF percent-encoded)."""
    parts = []
    for name, value in pairs:
        name = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
    return ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8", "surrogatepass")


encodings = st.sampled_from(["form", "form %5B", "multipart", "query", "query and form"])


@FUZZ
@given(method=st.sampled_from(sorted(METHODS)), body=params, suffix=SUFFIXES, encoding=encodings)
def test_form_multipart_and_query_parameters(webhook, client, method, body, suffix, encoding):
    pairs = [pair for name, value in body.items() for pair in php_pairs(value, name)]
    url = webhook + method + suffix
    if encoding.startswith("form"):
        text = form(pairs) if encoding == "form" else form(pairs).replace("[", "%5B").replace("]", "%5D")
        response = client.post(url, content=text.encode("utf-8", "surrogatepass"),
                               headers={"content-type": "application/x-www-form-urlencoded"})
    elif encoding == "multipart":
        response = client.post(url, content=multipart(pairs),
                               headers={"content-type": "multipart/form-data; boundary=fuzz-b0undary"})
    elif encoding == "query":
        response = client.get(url + "?" + form(pairs))
    else:
        half = len(pairs) // 2
        response = client.post(url + "?" + form(pairs[:half]),
                               content=form(pairs[half:]).encode("utf-8", "surrogatepass"),
                               headers={"content-type": "application/x-www-form-urlencoded"})
    check(response)


@FUZZ
@given(method=st.sampled_from(sorted(METHODS)), body=params, suffix=SUFFIXES,
       http_method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
def test_json_bodies_with_any_suffix_and_http_method(webhook, client, method, body, suffix, http_method):
    response = client.request(http_method, webhook + method + suffix, json=body)
    if http_method == "OPTIONS":  # a CORS preflight: allowed, with nothing in it
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"
        return
    check(response)


@st.composite
def batch_commands(draw):
    """`cmd` as a map or a list of `method?query` strings, some reading earlier results through `$result[…]`."""
    ids = draw(st.lists(st.sampled_from(["a", "b", "0", "1", "x y", "%", ""]) | st.text(max_size=6), max_size=6,
                        unique=True))
    commands = []
    for _ in ids:
        query = form([pair for name, value in draw(params).items() for pair in php_pairs(value, name)])
        reference = draw(st.sampled_from(["", "$result", "$result[a]", "$result[0][CONFIG_ID]", "$next[a]",
                                          "$total[b]", "$error[a][error]", "$time[0][start]", "$result[[[", "$"]))
        if reference:
            query += ("&" if query else "") + "CONFIG_ID=" + quote(reference, safe="$[]")
        method = draw(st.sampled_from(sorted(METHODS) + ["batch", "nope", "VOXIMPLANT.SIP.GET", ""]))
        commands.append(draw(st.sampled_from([f"{method}?{query}", method, query])) if query else method)
    commands = [draw(st.just(command) | values) for command in commands]  # now and then not a string at all
    if draw(st.booleans()):
        return commands
    return dict(zip(ids, commands))


@FUZZ
@given(cmd=batch_commands(), halt=st.sampled_from([None, 0, 1, "false", "Y", [], {"a": 1}]), suffix=SUFFIXES,
       as_form=st.booleans())
def test_batch_with_nested_commands(webhook, client, cmd, halt, suffix, as_form):
    body = {"cmd": cmd} if halt is None else {"cmd": cmd, "halt": halt}
    if as_form:
        pairs = [pair for name, value in body.items() for pair in php_pairs(value, name)]
        response = client.post(webhook + "batch" + suffix, content=form(pairs).encode("utf-8", "surrogatepass"),
                               headers={"content-type": "application/x-www-form-urlencoded"})
    else:
        response = client.post(webhook + "batch" + suffix, json=body)
    answer = check(response)
    if response.status_code == 200 and isinstance(answer, dict):
        assert set(answer["result"]) == {"result", "result_error", "result_total", "result_next", "result_time"}


# -- credentials in every place -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(server):
    return App(server, "--scope", "telephony,user")


@pytest.fixture(scope="module")
def session(server):
    with signed_in(server) as client:
        yield client


@pytest.fixture(scope="module")
def token(session) -> str:
    return csrf(session.get("/ui/"))


@pytest.fixture(scope="module")
def access_token(app):
    return app.tokens()["access_token"]


credentials = st.sampled_from(["valid", "valid", "empty", "garbage", "list", "map"]) | st.text(max_size=40)
places = st.sampled_from(["json", "form", "query", "query access_token", "bearer", "bearer and query", "none"])


@FUZZ
@given(method=st.sampled_from(sorted(METHODS)), body=params, suffix=SUFFIXES, place=places, token=credentials)
def test_credentials_in_the_body_the_query_and_the_header(server, client, access_token, method, body, suffix, place,
                                                          token):
    value = {"valid": access_token, "empty": "", "garbage": "0" * 32, "list": [access_token],
             "map": {"a": access_token}}.get(token, token)
    url = f"{server.base_url}/rest/{method}{suffix}"
    name = "access_token" if place == "query access_token" else "auth"
    pairs = [pair for key, item in body.items() for pair in php_pairs(item, key)]
    if place == "json":
        response = client.post(url, json={**body, "auth": value})
    elif place == "form":
        pairs += php_pairs(value, "auth")
        response = client.post(url, content=form(pairs).encode("utf-8", "surrogatepass"),
                               headers={"content-type": "application/x-www-form-urlencoded"})
    elif place.startswith("query"):
        response = client.post(url + "?" + form(php_pairs(value, name)), json=body)
    elif place.startswith("bearer"):
        # what HTTP lets a header carry (RFC 9110 §5.5); the rest never reaches the application
        header = "".join(char for char in str(value) if " " <= char <= "~").strip()
        query = "?" + form(php_pairs(value, "auth")) if place == "bearer and query" else ""
        response = client.post(url + query, json=body, headers={"authorization": f"Bearer {header}".strip()})
    else:
        response = client.post(url, json=body)
    check(response)


@FUZZ
@given(user=st.sampled_from(["1", "2", "0", "01", "1.0", "²", "9" * 30]) | st.text(max_size=8),
       code=st.text(max_size=40), method=st.sampled_from(sorted(METHODS)), suffix=SUFFIXES)
def test_webhook_urls_with_wrong_users_and_codes(server, webhook, client, user, code, method, suffix):
    path = f"/rest/{quote(user, safe='')}/{quote(code, safe='')}/{method}{suffix}"
    check(client.post(server.base_url + path, json={}))
    real_code = webhook.rstrip("/").split("/")[-1]
    check(client.post(f"{server.base_url}/rest/{quote(user, safe='')}/{real_code}/{method}{suffix}", json={}))


OAUTH_NAMES = ["client_id", "client_secret", "user_id", "state", "grant_type", "code", "refresh_token", "scope"]
oauth_values = st.text(max_size=20) | st.sampled_from(["1", "2", "0", "²", "٣", "9" * 30, "authorization_code",
                                                      "refresh_token", "client_credentials", ""])


@FUZZ
@given(path=st.sampled_from(["/oauth/authorize/", "/oauth/token/", "/oauth/token", "//oauth/authorize"]),
       query=st.dictionaries(st.sampled_from(OAUTH_NAMES) | st.text(max_size=6), oauth_values, max_size=6),
       real_client=st.booleans(), post=st.booleans())
def test_oauth_endpoints_answer_any_parameters(server, client, app, path, query, real_client, post):
    if real_client:
        query = {**query, "client_id": app.client_id, "client_secret": app.client_secret}
    url = server.base_url + path
    response = client.post(url, data=query) if post else client.get(url, params=query)
    assert response.status_code < 500, response.text
    if path.endswith(("authorize", "authorize/")):  # docs/behaviour.md#oauth-consent: to the consent page
        assert response.status_code == 303 and response.headers["location"].startswith("/ui/oauth/authorize")
        return
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert ("error" in response.json()) == (response.status_code != 200), response.text


CONSENT_NAMES = ["client_id", "state", "user_id", "decision", "csrf"]


@FUZZ
@given(query=st.dictionaries(st.sampled_from(CONSENT_NAMES) | st.text(max_size=6), oauth_values | st.just("allow"),
                             max_size=6),
       real_client=st.booleans(), with_csrf=st.booleans(), post=st.booleans())
def test_the_consent_page_answers_any_parameters(session, token, app, query, real_client, with_csrf, post):
    """docs/behaviour.md#oauth-consent: a page or a refusal page, or the code of an allowed app; never a 5xx."""
    if real_client:
        query = {**query, "client_id": app.client_id}
    if post and with_csrf:
        query = {**query, "csrf": token}
    response = session.post("/ui/oauth/authorize", data=query) if post else session.get("/ui/oauth/authorize",
                                                                                          params=query)
    if post and not with_csrf and query.get("csrf") != token:
        assert response.status_code == 403, response.text
    elif real_client and post and query.get("decision") == "allow":
        assert response.status_code == 200 and response.json()["code"], response.text  # this app has no handler
        return
    else:
        assert response.status_code in ((200,) if real_client else (400,)), response.text
    assert response.headers["content-type"].startswith("text/html"), response.text


# -- state: what sip.add accepts, sip.get returns; what it refuses changes nothing ---------------------------

PHP_TRIM = " \t\n\r\0\x0b"
line_texts = st.text(max_size=12) | st.sampled_from(["", " ", "100", " padded\t", "x" * 101, "a\r\nb", "é"])
servers = st.sampled_from(["sip.example.invalid", "sip:sip.example.invalid:5070;transport=tcp", "192.0.2.1",
                           "[2001:db8::1]:5061", "http://sip.example.invalid", "sips:h.invalid;transport=udp",
                           "bad host", "", "h.invalid:99999", "x" * 120]) | st.text(max_size=20)


def line_count(webhook: str, client: httpx.Client) -> int:
    return check(client.post(webhook + "voximplant.sip.get", json={})).get("total", 0)  # no total when none


@settings(max_examples=120, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(fields=st.fixed_dictionaries({}, optional={"TYPE": st.sampled_from(["cloud", "office", "CLOUD", "pbx", ""]),
                                                   "TITLE": line_texts, "SERVER": servers, "LOGIN": line_texts,
                                                   "PASSWORD": line_texts}),
       as_form=st.booleans())
def test_what_sip_add_accepts_sip_get_returns_and_what_it_refuses_changes_nothing(webhook, client, fields, as_form):
    before = line_count(webhook, client)
    if as_form:
        response = client.post(webhook + "voximplant.sip.add", data=fields)
    else:
        response = client.post(webhook + "voximplant.sip.add", json=fields)
    answer = check(response)
    if response.status_code != 200:
        assert answer["error"] in ("CHECK_FIELDS_ERROR", "TITLE_EXISTS", "ERROR_ARGUMENT"), answer
        assert line_count(webhook, client) == before
        return
    added = answer["result"]
    [row] = check(client.post(webhook + "voximplant.sip.get",
                              json={"FILTER": {"CONFIG_ID": added["CONFIG_ID"]}}))["result"]
    for name in ("TYPE", "TITLE", "SERVER", "LOGIN", "PASSWORD", "CONFIG_ID"):
        assert row[name] == added[name], name
    for name in ("TITLE", "LOGIN", "PASSWORD"):
        if name in fields:
            assert row[name] == fields[name].strip(PHP_TRIM), name
    assert row["TYPE"] == fields.get("TYPE", "cloud").lower()
    assert line_count(webhook, client) == before + 1
    check(client.post(webhook + "voximplant.sip.delete", json={"CONFIG_ID": added["CONFIG_ID"]}))


# -- regressions found by the properties above -------------------------------------------------------------------


def test_a_number_of_thousands_of_digits_is_read_as_php_reads_it(webhook, client):
    """PHP's (int) saturates; int() of over 4300 digits raised ValueError, answered with a 500."""
    response = client.post(webhook + "voximplant.sip.update", json={"CONFIG_ID": "1" * 5000, "TITLE": "x"})
    assert response.status_code == 404 and check(response)["error"] == "ERROR_NOT_FOUND"
    assert check(client.post(webhook + "voximplant.sip.get", json={"start": "9" * 5000}))["result"] == []


def test_an_xml_answer_is_well_formed_whatever_the_parameters_hold(webhook, client):
    """XML 1.0 has no way to write most control characters; an echoed filter key held one."""
    response = client.post(webhook + "voximplant.sip.get.xml", json={"FILTER": {"\x01NAME\x1f": "\x00"}})
    root = check(response)
    assert root.findtext("error") == "ERROR_CORE" and "\ufffd" in root.findtext("error_description")


def test_a_batch_reference_with_a_long_unclosed_path_is_answered_promptly(webhook):
    """Each `[` of a run with no `]` after it was tried as a new path step: the square of the run's length."""
    cmd = {"a": "server.time", "b": "server.time?x=$result[a]" + "[" * 300_000}
    began = time.monotonic()
    with httpx.Client(timeout=60) as http:
        answer = check(http.post(webhook + "batch", json={"cmd": cmd}))
    assert set(answer["result"]["result"]) == {"a", "b"}
    assert time.monotonic() - began < 15  # linear: well under a second; quadratic: minutes


def test_the_server_stays_healthy_and_logged_no_traceback(server, client):
    """Last in this module: after everything above, the server still answers and logged no unexpected error."""
    assert client.get(server.base_url + "/healthz").status_code == 200
    log = server.stderr()
    assert "Traceback" not in log and "unexpected error" not in log, log
