"""One line's page of the dashboard through a real `sipline serve` (docs/behaviour.md#dashboard-line): its fields
without the passwords, edit with sip.update's errors, delete, register now, history, trace, an office line's
bindings and the credentials for its PBX; CSRF, rights and portals as REST has them."""

from __future__ import annotations

import hashlib
import re
import socket
from html.parser import HTMLParser
from urllib.parse import unquote

import httpx
import pytest

from tests.integration.conftest import Api
from tests.integration.operator import cli, fields, hook_call, result
from tests.integration.server import SiplineProcess
from tests.waiting import wait_until

OFFICE = {"TYPE": "office", "TITLE": "Office", "SERVER": "pbx.example.invalid", "LOGIN": "trunk",
          "PASSWORD": "trunk-secret"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs, self.children = tag, attrs, []

    @property
    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text for child in self.children)

    def walk(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Elements of this tag (any, if None) whose attributes hold these values (`class_` for class)."""
        wanted = {name.rstrip("_"): value for name, value in attrs.items()}
        return [node for node in self.walk() if (tag is None or node.tag == tag) and all(
            value in (node.attrs.get(name) or "").split() if name == "class" else node.attrs.get(name) == value
            for name, value in wanted.items())]

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        [found] = self.find(tag, **attrs)
        return found


class Tree(HTMLParser):
    """A page as a tree of elements: enough to read what a test looks for, by id, class or name."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.open = [self.root]
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.open[-1].children.append(node)
        if tag not in VOID:
            self.open.append(node)

    def handle_endtag(self, tag):
        for depth in range(len(self.open) - 1, 0, -1):
            if self.open[depth].tag == tag:
                del self.open[depth:]
                return

    def handle_data(self, data):
        self.open[-1].children.append(data)


def parsed(response: httpx.Response) -> Node:
    return Tree(response.text).root


class Browser:
    """An httpx client signed in to the dashboard by a one-time link, as a browser holds its cookie."""

    def __init__(self, server: SiplineProcess, link: str) -> None:
        self.server = server
        self.client = httpx.Client(base_url=server.base_url, timeout=10, follow_redirects=False)
        signed_in = self.client.get(link)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ui/", signed_in.text

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def page(self, config_id: object) -> Node:
        response = self.get(f"/ui/lines/{config_id}")
        assert response.status_code == 200, response.text
        return parsed(response)

    def csrf(self) -> str:
        return parsed(self.get("/ui/")).find("input", name="csrf")[0].attrs["value"]

    def post(self, path: str, csrf: bool = True, **form: str) -> httpx.Response:
        return self.client.post(path, data={**({"csrf": self.csrf()} if csrf else {}), **form})

    def edit(self, config_id: object, **form: str) -> httpx.Response:
        """The edit form as the page fills it, with `form`'s fields typed over it."""
        page = self.page(config_id)
        edit = page.one("form", id="edit-line")
        filled = {node.attrs["name"]: node.attrs.get("value") or "" for node in edit.find("input")}
        return self.client.post(f"/ui/lines/{config_id}/edit", data={**filled, **form})


@pytest.fixture
def sign_in(sipline):
    """Browser(link) for `sipline dashboard-link ARGS…`: sign_in("--user", "2")."""
    browsers: list[Browser] = []

    def signed_in(*args: str, link: str | None = None) -> Browser:
        browsers.append(Browser(sipline, link or cli(sipline.data_dir, "dashboard-link", *args)))
        return browsers[-1]

    yield signed_in
    for browser in browsers:
        browser.client.close()


@pytest.fixture
def admin(sipline, sign_in) -> Browser:
    return sign_in(link=sipline.printed["dashboard"])


def line_row(api: Api, config_id: str) -> dict | None:
    rows = api.result("voximplant.sip.get")
    return next((row for row in rows if row["CONFIG_ID"] == config_id), None) if rows else None


def causes(api: Api, config_id: str) -> list[str]:
    return [entry["CAUSE"] for entry in api.result("sipline.sip.history", json={"CONFIG_ID": config_id})]


def rest_error(api: Api, config_id: str, **fields_: str) -> str:
    """REST's error_description for the same sip.update."""
    response = api.call("voximplant.sip.update", json={"CONFIG_ID": config_id, **fields_})
    assert response.status_code == 400, response.text
    return response.json()["error_description"]


def alert(response: httpx.Response) -> list[str]:
    """The messages of the page's error (one class=error role=alert element)."""
    box = parsed(response).one(class_="error", role="alert")
    return [item.text.strip() for item in box.find("li")]


def test_the_page_shows_the_fields_as_sip_get_and_never_the_cloud_password(sipline, api, admin):
    line = api.add(TITLE="Provider <b>&amp;", PASSWORD="cloud-pw-42")
    response = admin.get(f"/ui/lines/{line['CONFIG_ID']}")
    assert response.status_code == 200
    assert "cloud-pw-42" not in response.text
    assert "<b>&amp;" not in response.text and "Provider &lt;b&gt;&amp;amp;" in response.text  # escaped
    page = parsed(response)
    shown = page.one("dl", id="line-fields")
    pairs = dict(zip([dt.text for dt in shown.find("dt")], [dd.text for dd in shown.find("dd")], strict=True))
    [row] = api.result("voximplant.sip.get")
    for key, value in row.items():
        if key.startswith("REGISTRATION_"):  # the first REGISTER may end between the two reads
            assert key in pairs
        elif key == "PASSWORD":
            assert pairs[key] == "set (not shown)"
        else:
            assert pairs[key] == ("—" if value is None else value), key
    assert page.find("button", id="register-now") and not page.find(id="pbx-credentials")
    assert page.one("form", id="edit-line").one("input", name="password").attrs["value"] == ""
    # every form carries the session's CSRF token, every input a label
    for form in page.find("form"):
        assert form.one("input", name="csrf").attrs["value"] == admin.csrf()
    for node in page.find("input"):
        assert node.attrs["type"] == "hidden" or any(
            node in label.walk() for label in page.find("label")), node.attrs
    delete = page.one("form", action=f"/ui/lines/{line['CONFIG_ID']}/delete")
    assert delete.attrs["data-confirm"] == "Delete line “Provider <b>&amp;”?"
    # no line, a CONFIG_ID that is none, a line of another portal: the 404 page, no data
    other = fields(cli(sipline.data_dir, "portal", "create", "--domain", "localhost"))
    theirs = result(hook_call(other["webhook"], sipline, "voximplant.sip.add", host="localhost",
                              json={**OFFICE, "TITLE": "Theirs"}))
    for path in ("999999", "abc", "-1", "0", theirs["CONFIG_ID"]):
        missing = admin.get(f"/ui/lines/{path}")
        assert missing.status_code == 404 and "Theirs" not in missing.text, path
    assert admin.post(f"/ui/lines/{theirs['CONFIG_ID']}/delete").status_code == 404
    assert result(hook_call(other["webhook"], sipline, "voximplant.sip.get", host="localhost"))[0]["TITLE"] == "Theirs"


def test_edit_saves_what_changed_and_refuses_with_the_words_of_sip_update(api, admin):
    line, other = api.add(TITLE="A"), api.add(TITLE="B")
    config_id = line["CONFIG_ID"]
    saved = admin.edit(config_id, title="Renamed")
    assert saved.status_code == 303 and saved.headers["location"] == f"/ui/lines/{config_id}?done=saved"
    after = parsed(admin.get(saved.headers["location"]))
    assert after.one(class_="notice").text == "Saved."
    assert after.one("form", id="edit-line").one("input", name="title").attrs["value"] == "Renamed"
    row = line_row(api, config_id)
    assert (row["TITLE"], row["SERVER"], row["LOGIN"], row["PASSWORD"]) == ("Renamed", line["SERVER"], "100", "secret")
    assert "line updated" not in causes(api, config_id)  # a new title alone does not register again

    # refused: the words of sip.update, the page again with what was typed, nothing changed
    for typed, same in (({"title": "b"}, {"TITLE": "b"}), ({"server": ""}, {"SERVER": ""}),
                        ({"server": " ", "login": "", "password": "x" * 101},
                         {"SERVER": " ", "LOGIN": "", "PASSWORD": "x" * 101})):
        refused = admin.edit(config_id, **typed)
        assert refused.status_code == 400, typed
        assert "<br>" not in refused.text
        assert alert(refused) == rest_error(api, config_id, **same).split("<br> ")
        form = parsed(refused).one("form", id="edit-line")
        for name, value in typed.items():
            assert form.one("input", name=name).attrs["value"] == ("" if name == "password" else value)
        assert line_row(api, config_id)["TITLE"] == "Renamed" and line_row(api, config_id)["SERVER"] == line["SERVER"]
    assert alert(admin.edit(config_id, title="b")) == ["The specified connection name is already registered in the system"]

    # a password typed replaces the one set, and is not shown; the registration starts over
    assert admin.edit(config_id, password="new-secret").status_code == 303
    assert line_row(api, config_id)["PASSWORD"] == "new-secret"
    assert "new-secret" not in admin.get(f"/ui/lines/{config_id}").text
    assert "line updated" in causes(api, config_id)
    assert admin.edit(config_id, server="sip2.example.invalid:5070", login="200").status_code == 303
    row = line_row(api, config_id)
    assert (row["SERVER"], row["LOGIN"], row["PASSWORD"]) == ("sip2.example.invalid:5070", "200", "new-secret")
    assert line_row(api, other["CONFIG_ID"])["TITLE"] == "B"


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(api, admin):
    line = api.add(TITLE="Kept")
    config_id = line["CONFIG_ID"]
    for action, form in (("edit", {"title": "Changed"}), ("delete", {}), ("register", {})):
        for csrf in ({}, {"csrf": "forged"}):
            refused = admin.client.post(f"/ui/lines/{config_id}/{action}", data={**form, **csrf})
            assert refused.status_code == 403 and "CSRF" in refused.text, action
    assert line_row(api, config_id)["TITLE"] == "Kept"
    assert "register now" not in causes(api, config_id)
    assert admin.client.get(f"/ui/lines/{config_id}/edit").status_code == 405  # changes are POSTs only


def test_delete_removes_the_line_and_the_lines_page_says_so(api, admin):
    line, kept = api.add(TITLE="Gone <soon>"), api.add(TITLE="Kept")
    deleted = admin.post(f"/ui/lines/{line['CONFIG_ID']}/delete")
    assert deleted.status_code == 303
    location = deleted.headers["location"]
    assert location.startswith("/ui/?deleted=") and unquote(location.split("=", 1)[1]) == "Gone <soon>"
    lines = admin.get(location)
    assert parsed(lines).one(class_="notice").text == "Line “Gone <soon>” deleted."
    assert "<soon>" not in lines.text
    assert [row["CONFIG_ID"] for row in api.result("voximplant.sip.get")] == [kept["CONFIG_ID"]]
    assert admin.get(f"/ui/lines/{line['CONFIG_ID']}").status_code == 404
    assert admin.post(f"/ui/lines/{line['CONFIG_ID']}/delete").status_code == 404


def test_register_now_on_a_cloud_line_is_in_its_history(api, admin):
    line = api.add(TITLE="Cloud")
    config_id = line["CONFIG_ID"]
    # once its first attempt ended (a line still waiting for it has nothing to restart, nor to record)
    wait_until(lambda: causes(api, config_id), 15)
    sent = admin.post(f"/ui/lines/{config_id}/register")
    assert sent.status_code == 303 and sent.headers["location"] == f"/ui/lines/{config_id}?done=register"
    assert "REGISTER is on its way" in parsed(admin.get(sent.headers["location"])).one(class_="notice").text
    wait_until(lambda: "register now" in causes(api, config_id), 10, message=lambda: str(causes(api, config_id)))
    history = admin.page(config_id).one("ol", id="history")
    entries = [re.sub(r"\s+", " ", item.text).strip() for item in history.find("li")]
    assert any("register now" in entry for entry in entries), entries
    for item in history.find("li"):
        assert item.one(class_="status").attrs["class"].split()[1] in ("ok", "bad", "busy", "idle")


def test_an_office_line_shows_the_pbx_credentials_its_bindings_and_trace(sipline, api, admin):
    office = api.add(**OFFICE)
    config_id = office["CONFIG_ID"]
    [row] = api.result("voximplant.sip.get")
    page = admin.page(config_id)
    credentials = page.one("dl", id="pbx-credentials")
    text = credentials.text
    assert row["INCOMING_SERVER"] in text and row["INCOMING_LOGIN"] in text
    button = credentials.one("button", **{"data-show": "incoming-password"})
    assert button.attrs["aria-expanded"] == "false" and button.text == "Show"
    secret = page.one(id="incoming-password")
    assert "hidden" in secret.attrs and secret.text == row["INCOMING_PASSWORD"]
    assert row["INCOMING_PASSWORD"] not in page.one("main").text.replace(secret.text, "", 1)  # only there
    assert "trunk-secret" not in admin.get(f"/ui/lines/{config_id}").text
    assert not page.find(id="register-now") and page.find(id="no-bindings")
    assert admin.post(f"/ui/lines/{config_id}/register").headers["location"] == f"/ui/lines/{config_id}"

    # the PBX registers: its binding, the history entry and the trace show
    contact = register_pbx(sipline, row["INCOMING_LOGIN"], row["INCOMING_PASSWORD"])
    page = wait_until(lambda: (shown := admin.page(config_id)).find("table", id="bindings") and shown, 5)
    [binding] = page.one("table", id="bindings").one("tbody").find("tr")
    assert contact in binding.text and "udp" in binding.text
    assert "binding added" in page.one("ol", id="history").text and contact in page.one("ol", id="history").text
    trace = page.one("pre", id="trace").text
    assert page.one("button", **{"data-copy": "trace"}).text == "Copy trace"
    rest_trace = api.result("sipline.sip.trace", json={"CONFIG_ID": config_id})
    assert [entry["MESSAGE"].split("\r\n", 1)[0] for entry in rest_trace] == [
        f"REGISTER sip:127.0.0.1:{sipline.sip_port} SIP/2.0", "SIP/2.0 401 Unauthorized",
        f"REGISTER sip:127.0.0.1:{sipline.sip_port} SIP/2.0", "SIP/2.0 200 OK"]
    for entry in rest_trace:
        direction = "->" if entry["DIRECTION"] == "out" else "<-"
        assert f"{entry['TIME']} {entry['TRANSPORT']} {entry['LOCAL']} {direction} {entry['REMOTE']}" in trace
        assert entry["MESSAGE"].replace("\r\n", "\n").rstrip("\n") in trace
    assert row["INCOMING_PASSWORD"] not in trace and 'response="…"' in trace


def register_pbx(server: SiplineProcess, user: str, password: str) -> str:
    """An office PBX's REGISTER over UDP, answered with MD5 digest (RFC 2617, written here); its Contact."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(3)
        port = sock.getsockname()[1]
        uri, contact = f"sip:127.0.0.1:{server.sip_port}", f"sip:{user}@127.0.0.1:{port}"

        def send(number: int, extra: str = "") -> str:
            sock.sendto((f"REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKdash{number};rport"
                         f"\r\nFrom: <sip:{user}@127.0.0.1>;tag=1\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: dash-1"
                         f"\r\nCSeq: {number} REGISTER\r\nContact: <{contact}>\r\nExpires: 600\r\n{extra}"
                         "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", server.sip_port))
            return sock.recv(65536).decode()

        challenged = send(1)
        assert challenged.startswith("SIP/2.0 401 "), challenged
        md5_challenge = next(c for c in re.findall(r"WWW-Authenticate: Digest ([^\r]+)", challenged)
                             if "algorithm=SHA" not in c)
        realm = re.search(r'realm="([^"]+)"', md5_challenge).group(1)
        nonce = re.search(r'nonce="([^"]+)"', md5_challenge).group(1)
        md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
        response = md5(f"{md5(f'{user}:{realm}:{password}')}:{nonce}:00000001:c0ffee:auth:{md5(f'REGISTER:{uri}')}")
        answered = send(2, f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                           f'response="{response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"\r\n')
        assert answered.startswith("SIP/2.0 200 "), answered
    return contact


def test_a_user_without_the_right_gets_403_and_no_line_data(sipline, api, sign_in):
    line = api.add(TITLE="Secret title", SERVER="hidden.example.invalid")
    config_id = line["CONFIG_ID"]
    nobody = cli(sipline.data_dir, "user", "create", "--name", "Nobody")
    numbers = cli(sipline.data_dir, "user", "create", "--name", "Numbers", "--numbers-modify")
    visitor = sign_in("--user", nobody)
    for response in (visitor.get(f"/ui/lines/{config_id}"), visitor.post(f"/ui/lines/{config_id}/edit", title="X"),
                     visitor.post(f"/ui/lines/{config_id}/delete"), visitor.post(f"/ui/lines/{config_id}/register"),
                     visitor.get("/ui/lines/999999")):
        assert response.status_code == 403
        assert "Secret title" not in response.text and "hidden.example.invalid" not in response.text
    stranger = httpx.get(f"{sipline.base_url}/ui/lines/{config_id}")  # no session: the sign-in page, no data
    assert stranger.status_code == 401 and "Secret title" not in stranger.text
    assert line_row(api, config_id)["TITLE"] == "Secret title" and "register now" not in causes(api, config_id)
    # "Manage numbers — modify" is enough, as for REST
    allowed = sign_in("--user", numbers)
    assert allowed.page(config_id).one("h1").text.startswith("Secret title")
    assert allowed.edit(config_id, title="Renamed by user").status_code == 303
    assert line_row(api, config_id)["TITLE"] == "Renamed by user"
