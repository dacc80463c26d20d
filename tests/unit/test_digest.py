"""SIP digest authentication (docs/behaviour.md#reg-digest, docs/behaviour.md#office-digest): RFC vectors, rules, parser properties."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.sip.digest import (
    ALGORITHMS,
    Challenge,
    Credentials,
    DigestError,
    algorithm_list,
    authorization,
    expected_response,
    ha1,
    parse_challenge,
    parse_credentials,
    select_challenges,
    verify,
)

HASHLIB_NAMES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}


def reference_response(algorithm, *, username, realm, password, nonce, method, uri, qop, nc, cnonce, body=b""):
    """RFC 7616 §3.4.1-3.4.3 written out the long way, straight on hashlib."""
    base = algorithm.removesuffix("-sess")

    def h(data: bytes) -> str:
        return hashlib.new(HASHLIB_NAMES[base], data).hexdigest()

    a1 = h(f"{username}:{realm}:{password}".encode())
    if algorithm.endswith("-sess"):
        a1 = h(f"{a1}:{nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}:{h(body)}" if qop == "auth-int" else f"{method}:{uri}"
    if qop is None:
        return h(f"{a1}:{nonce}:{h(a2.encode())}".encode())
    return h(f"{a1}:{nonce}:{nc:08x}:{cnonce}:{qop}:{h(a2.encode())}".encode())


def challenge(**overrides) -> Challenge:
    fields = dict(realm="sip.example.net", nonce="n0nce", algorithm="MD5", qop=("auth",), opaque=None,
                  stale=False, supported=True)
    return Challenge(**{**fields, **overrides})


def answer(chal: Challenge, **overrides) -> str:
    fields = dict(method="REGISTER", uri="sip:sip.example.net", username="alice", password="secret", nc=1,
                  cnonce="c0ffee00deadbeef")
    return authorization(chal, **{**fields, **overrides})


# --- RFC vectors ------------------------------------------------------------------------------------------------


def test_rfc2617_section_3_5_example():
    chal = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = authorization(chal, method="GET", uri="/dir/index.html", username="Mufasa", password="Circle Of Life",
                          nc=1, cnonce="0a4f113b")
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, qop=auth, '
        'nc=00000001, cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )


RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_examples(algorithm, response):
    # The RFC's folded header layout, one parameter per continuation line.
    chal = parse_challenge(
        f'Digest\r\n    realm="http-auth@example.org",\r\n    qop="auth, auth-int",\r\n'
        f'    algorithm={algorithm},\r\n    nonce="{RFC7616_NONCE}",\r\n    opaque="{RFC7616_OPAQUE}"'
    )
    value = authorization(chal, method="GET", uri="/dir/index.html", username="Mufasa", password="Circle of Life",
                          nc=1, cnonce=RFC7616_CNONCE)
    credentials = parse_credentials(value)
    assert credentials.response == response
    assert (credentials.qop, credentials.nc, credentials.cnonce, credentials.opaque) == (
        "auth", 1, RFC7616_CNONCE, RFC7616_OPAQUE)
    assert f'response="{response}"' in value and f"algorithm={algorithm}," in value


def test_rfc7616_authorization_verified_by_server_side():
    credentials = parse_credentials(
        'Digest username="Mufasa",\r\n realm="http-auth@example.org",\r\n uri="/dir/index.html",\r\n'
        f' algorithm=SHA-256,\r\n nonce="{RFC7616_NONCE}",\r\n nc=00000001,\r\n cnonce="{RFC7616_CNONCE}",\r\n'
        ' qop=auth,\r\n response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",\r\n'
        f' opaque="{RFC7616_OPAQUE}"'
    )
    stored = ha1("SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life")
    assert verify(credentials, method="GET", stored_ha1=stored)
    assert not verify(credentials, method="POST", stored_ha1=stored)


def test_sha512_256_is_fips_180_4():
    # FIPS 180-4 / NIST CSRC example "abc" for SHA-512/256.
    assert ALGORITHMS["SHA-512-256"](b"abc") == "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"


@pytest.mark.parametrize(
    ("algorithm", "offered"),
    # -sess without qop is refused: test_sess_without_qop_is_refused
    [(name, qop) for name in ALGORITHMS for qop in [("auth",), ("auth-int",), ()] if qop or "-sess" not in name],
)
def test_every_algorithm_matches_reference(algorithm, offered):
    chal = challenge(algorithm=algorithm, qop=offered)
    value = answer(chal, body=b"v=0\r\n")
    assert parse_credentials(value).response == reference_response(
        algorithm, username="alice", realm="sip.example.net", password="secret", nonce="n0nce",
        method="REGISTER", uri="sip:sip.example.net", qop=offered[0] if offered else None, nc=1,
        cnonce="c0ffee00deadbeef", body=b"v=0\r\n")


def test_sha512_256_sess_auth_int_by_hand():
    h = lambda text: hashlib.new("sha512_256", text.encode()).hexdigest()  # noqa: E731
    body = b"hello"
    ha1_sess = h(f"{h('alice:sip.example.net:secret')}:n0nce:c0ffee00deadbeef")
    ha2 = h(f"REGISTER:sip:sip.example.net:{hashlib.new('sha512_256', body).hexdigest()}")
    expected = h(f"{ha1_sess}:n0nce:00000001:c0ffee00deadbeef:auth-int:{ha2}")
    value = answer(challenge(algorithm="SHA-512-256-sess", qop=("auth-int",)), body=body)
    assert f'response="{expected}"' in value and "algorithm=SHA-512-256-sess," in value


# --- client rules (docs/behaviour.md#reg-digest) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (("auth",), "auth"),
        (("auth", "auth-int"), "auth"),
        (("auth-int", "auth"), "auth"),
        (("auth-int",), "auth-int"),
        (("auth-int", "x-future"), "auth-int"),
        ((), None),
    ],
)
def test_qop_choice(offered, chosen):
    credentials = parse_credentials(answer(challenge(qop=offered)))
    assert credentials.qop == chosen


def test_no_qop_gives_rfc2069_response_without_nc_or_cnonce():
    value = answer(challenge(qop=()))
    assert "qop=" not in value and "nc=" not in value and "cnonce=" not in value
    credentials = parse_credentials(value)
    assert (credentials.nc, credentials.cnonce) == (None, None)
    assert verify(credentials, method="REGISTER", stored_ha1=ha1("MD5", "alice", "sip.example.net", "secret"))


def test_auth_int_hashes_the_body():
    value = answer(challenge(qop=("auth-int",)), body=b"payload")
    credentials = parse_credentials(value)
    stored = ha1("MD5", "alice", "sip.example.net", "secret")
    assert verify(credentials, method="REGISTER", stored_ha1=stored, body=b"payload")
    assert not verify(credentials, method="REGISTER", stored_ha1=stored, body=b"")
    assert value != answer(challenge(qop=("auth-int",)), body=b"")


def test_only_unknown_qop_is_refused():
    with pytest.raises(DigestError):
        answer(challenge(qop=("x-future",)))


@pytest.mark.parametrize("algorithm", ["MD5-sess", "SHA-256-sess", "SHA-512-256-sess"])
def test_sess_ha1_uses_nonce_and_cnonce(algorithm):
    base = algorithm.removesuffix("-sess")
    value = answer(challenge(algorithm=algorithm))
    credentials = parse_credentials(value)
    stored = ha1(base, "alice", "sip.example.net", "secret")
    assert ha1(algorithm, "alice", "sip.example.net", "secret") == stored
    assert verify(credentials, method="REGISTER", stored_ha1=stored)
    plain = parse_credentials(answer(challenge(algorithm=base)))
    assert credentials.response != plain.response
    assert value != answer(challenge(algorithm=algorithm), cnonce="another")


def test_sess_without_qop_is_refused():
    with pytest.raises(DigestError):
        answer(challenge(algorithm="MD5-sess", qop=()))


def test_opaque_is_echoed_and_absent_when_not_offered():
    assert answer(challenge(opaque='op "aq" \\ue')).endswith(', opaque="op \\"aq\\" \\\\ue"')
    assert parse_credentials(answer(challenge(opaque='op "aq" \\ue'))).opaque == 'op "aq" \\ue'
    assert "opaque" not in answer(challenge(opaque=None))
    assert parse_credentials(answer(challenge(opaque=""))).opaque == ""


@pytest.mark.parametrize(("nc", "text"), [(1, "00000001"), (0xAB, "000000ab"), (0xFFFFFFFF, "ffffffff")])
def test_nc_is_eight_lower_hex_digits(nc, text):
    value = answer(challenge(), nc=nc)
    assert f"nc={text}," in value
    assert parse_credentials(value).nc == nc


@pytest.mark.parametrize("nc", [0, -1, 2**32])
def test_nc_out_of_range(nc):
    with pytest.raises(DigestError):
        answer(challenge(), nc=nc)


def test_nc_ignored_without_qop():
    assert answer(challenge(qop=()), nc=0) == answer(challenge(qop=()), nc=7)


def test_quoted_values_are_escaped_and_copied_verbatim():
    chal = parse_challenge('Digest realm="Office \\"A\\" \\\\ B", nonce="x\\y"')
    assert (chal.realm, chal.nonce) == ('Office "A" \\ B', "xy")
    value = answer(chal, username='al"ice\\', uri="sip:a@b;x=\"q\"")
    assert 'username="al\\"ice\\\\"' in value
    assert 'realm="Office \\"A\\" \\\\ B"' in value
    assert 'uri="sip:a@b;x=\\"q\\""' in value
    credentials = parse_credentials(value)
    assert (credentials.username, credentials.realm, credentials.uri) == ('al"ice\\', 'Office "A" \\ B', 'sip:a@b;x="q"')


def test_uri_and_algorithm_spelling_kept():
    value = answer(parse_challenge('Digest realm="r", nonce="n", algorithm=sha-256'), uri="SIP:Host.Example;lr")
    assert 'uri="SIP:Host.Example;lr"' in value and value.endswith("algorithm=SHA-256")


@pytest.mark.parametrize("username", ["a\r\nVia: evil", "a\nb", "nul\x00", "del\x7f", "us\x1f"])
def test_control_characters_are_not_sent(username):
    with pytest.raises(DigestError):
        answer(challenge(), username=username)


@pytest.mark.parametrize("username", ["tab\tin", "Jürgen", "no\u00a0break"])
def test_tabs_and_other_text_are_sent_quoted(username):
    """Not printable to Python, but not control characters either: RFC 3261 qdtext allows them."""
    assert parse_credentials(answer(challenge(), username=username)).username == username


def test_unsupported_algorithm_cannot_be_answered():
    with pytest.raises(DigestError):
        answer(challenge(algorithm="SHA-1", supported=False))


# --- parse_challenge --------------------------------------------------------------------------------------------


def test_parse_challenge_fields():
    chal = parse_challenge(
        'Digest realm="x", nonce="abc", qop="auth,auth-int", algorithm=SHA-256, stale=TRUE, opaque="o"')
    assert chal == Challenge(realm="x", nonce="abc", algorithm="SHA-256", qop=("auth", "auth-int"), opaque="o",
                             stale=True, supported=True)


def test_parse_challenge_defaults_and_spacing():
    chal = parse_challenge('  digest   NONCE = "n" ,REALM="r, with comma"  ')
    assert chal == Challenge(realm="r, with comma", nonce="n", algorithm="MD5", qop=(), opaque=None, stale=False,
                             supported=True)


@pytest.mark.parametrize(
    ("param", "stale"),
    [("stale=TRUE", True), ("stale=true", True), ('stale="True"', True), ("stale=false", False),
     ("stale=FALSE", False), ("stale=yes", False), ("", False)],
)
def test_stale(param, stale):
    assert parse_challenge(f'Digest realm="r", nonce="n"{", " + param if param else ""}').stale is stale


@pytest.mark.parametrize(
    ("algorithm", "canonical", "supported"),
    [("md5", "MD5", True), ("MD5-SESS", "MD5-sess", True), ("sha-256", "SHA-256", True),
     ('"SHA-256-sess"', "SHA-256-sess", True), ("Sha-512-256", "SHA-512-256", True),
     ("sha-512-256-Sess", "SHA-512-256-sess", True), ("SHA-1", "SHA-1", False), ("AKAv1-MD5", "AKAv1-MD5", False)],
)
def test_algorithm_names(algorithm, canonical, supported):
    chal = parse_challenge(f'Digest realm="r", nonce="n", algorithm={algorithm}')
    assert (chal.algorithm, chal.supported) == (canonical, supported)


def test_qop_tokens_lower_cased():
    assert parse_challenge('Digest realm="r", nonce="n", qop=" Auth-Int , AUTH ,"').qop == ("auth-int", "auth")
    assert parse_challenge('Digest realm="r", nonce="n", qop=auth').qop == ("auth",)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Digest",
        "Digest ",
        'Basic realm="r"',
        'Digestrealm="r", nonce="n"',
        'Digest realm="r"',
        'Digest nonce="n"',
        'Digest realm="r", nonce="n",',
        'Digest realm="r" nonce="n"',
        'Digest realm="r, nonce="n"',
        'Digest realm="r", realm="s", nonce="n"',
        'Digest realm="r", Nonce="n", nonce="m"',
        'Digest realm=, nonce="n"',
        'Digest realm="r", nonce=a/b',
        'Digest realm="r", nonce="n", , opaque="o"',
        'Digest realm="r\x01", nonce="n"',
        'Digest realm="r\\\x01", nonce="n"',
        'Digest realm="r\r\nVia: x", nonce="n"',
        'Digest realm="r", nonce="n"\r\n',
    ],
)
def test_parse_challenge_refuses(value):
    with pytest.raises(DigestError):
        parse_challenge(value)


# --- select_challenges ------------------------------------------------------------------------------------------


def test_select_one_per_realm_in_first_seen_order():
    values = [
        'Digest realm="proxy", nonce="p1", algorithm=SHA-256',
        'Digest realm="registrar", nonce="r1", algorithm=SHA-256',
        'Digest realm="proxy", nonce="p2", algorithm=MD5',
        'Digest realm="registrar", nonce="r2"',
    ]
    chosen, unsupported = select_challenges(values)
    assert [(c.realm, c.nonce) for c in chosen] == [("proxy", "p1"), ("registrar", "r1")]
    assert unsupported is None


def test_select_skips_unsupported_top_header_of_a_realm():
    values = ['Digest realm="r", nonce="a", algorithm=SHA-1', 'Digest realm="r", nonce="b", algorithm=SHA-512-256']
    chosen, unsupported = select_challenges(values)
    assert [(c.nonce, c.algorithm) for c in chosen] == [("b", "SHA-512-256")]
    assert unsupported is None


def test_select_reports_first_realm_without_supported_algorithm():
    values = [
        'Digest realm="a", nonce="1"',
        'Digest realm="b", nonce="2", algorithm=SHA-1',
        'Digest realm="b", nonce="3", algorithm=AKAv1-MD5',
        'Digest realm="c", nonce="4", algorithm=SHA3-256',
    ]
    chosen, unsupported = select_challenges(values)
    assert [c.realm for c in chosen] == ["a"]
    assert unsupported == "SHA-1"


def test_select_skips_unparseable_values():
    values = ['Basic realm="a"', "Digest garbage", 'Digest realm="a", nonce="1", algorithm=sha-256']
    chosen, unsupported = select_challenges(values)
    assert [(c.realm, c.algorithm) for c in chosen] == [("a", "SHA-256")]
    assert unsupported is None


@pytest.mark.parametrize("values", [[], ['Basic realm="a"', "Digest", ""]])
def test_select_nothing_parses(values):
    assert select_challenges(values) == ([], None)


# --- server side (docs/behaviour.md#office-digest) -------------------------------------------------------------------------------------------


def test_parse_credentials_defaults():
    credentials = parse_credentials('Digest username="u", realm="r", nonce="n", uri="sip:r", response="00"')
    assert credentials == Credentials(username="u", realm="r", nonce="n", uri="sip:r", response="00",
                                      algorithm="MD5", qop=None, nc=None, cnonce=None, opaque=None)


BASE = 'Digest username="u", realm="r", nonce="n", uri="sip:r", response="00"'


@pytest.mark.parametrize(
    "value",
    [
        'Digest realm="r", nonce="n", uri="sip:r", response="00"',
        'Digest username="u", realm="r", nonce="n", response="00"',
        'Digest username="u", realm="r", nonce="n", uri="sip:r"',
        'Basic dXNlcjpwYXNz',
        BASE + ", algorithm=SHA-1",
        BASE + ', qop=auth, cnonce="c"',
        BASE + ", qop=auth, nc=00000001",
        BASE + ', qop=auth-conf, nc=00000001, cnonce="c"',
        BASE + ', qop=auth, nc=1, cnonce="c"',
        BASE + ', qop=auth, nc=0000000A, cnonce="c"',
        BASE + ', qop=auth, nc=0000000g, cnonce="c"',
        BASE + ', qop=auth, nc=000000001, cnonce="c"',
        BASE + ', qop=auth, nc=00000000, cnonce="c"',
        BASE + ', username="v"',
    ],
)
def test_parse_credentials_refuses(value):
    with pytest.raises(DigestError):
        parse_credentials(value)


def test_hand_built_credentials_that_cannot_be_checked():
    stored = ha1("MD5", "u", "r", "p")
    good = parse_credentials(BASE + ', qop=auth, nc=00000001, cnonce="c"')
    for bad in [Credentials(**{**good.__dict__, "nc": None}), Credentials(**{**good.__dict__, "qop": "auth-conf"}),
                Credentials(**{**good.__dict__, "algorithm": "SHA-1"}),
                Credentials(**{**good.__dict__, "cnonce": None}),
                Credentials(**{**good.__dict__, "algorithm": "MD5-sess", "cnonce": None})]:
        with pytest.raises(DigestError):
            verify(bad, method="REGISTER", stored_ha1=stored)


def test_expected_response_is_what_verify_compares():
    value = answer(challenge(algorithm="SHA-256"))
    credentials = parse_credentials(value)
    stored = ha1("SHA-256", "alice", "sip.example.net", "secret")
    assert expected_response(credentials, method="REGISTER", stored_ha1=stored) == credentials.response


def test_ha1_refuses_unknown_algorithm():
    with pytest.raises(DigestError):
        ha1("SHA-1", "u", "r", "p")


def test_verify_non_ascii_response_is_false():
    credentials = parse_credentials(BASE.replace('response="00"', 'response="é"'))
    assert not verify(credentials, method="REGISTER", stored_ha1=ha1("MD5", "u", "r", "p"))


# --- properties -------------------------------------------------------------------------------------------------

# Printable text as configuration and servers supply it: no control characters, no surrogates.
sendable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)
algorithms = st.sampled_from(sorted(ALGORITHMS))
qop_offers = st.sampled_from([("auth",), ("auth-int",), ("auth", "auth-int"), ("auth-int", "auth")])


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(realm=sendable, nonce=sendable, opaque=st.none() | sendable, algorithm=algorithms, qop=qop_offers,
       stale=st.booleans())
def test_challenge_round_trip(realm, nonce, opaque, algorithm, qop, stale):
    params = [f"realm={quote(realm)}", f"nonce={quote(nonce)}", f"algorithm={algorithm.upper()}",
              f"qop={quote(','.join(qop))}", f"stale={'TRUE' if stale else 'false'}"]
    if opaque is not None:
        params.append(f"opaque={quote(opaque)}")
    assert parse_challenge("Digest " + ", ".join(params)) == Challenge(realm, nonce, algorithm, qop, opaque, stale, True)


@given(username=sendable, password=sendable, realm=sendable, nonce=sendable, uri=sendable, opaque=st.none() | sendable,
       algorithm=algorithms, qop=qop_offers, nc=st.integers(1, 2**32 - 1), cnonce=sendable, body=st.binary(max_size=20),
       method=st.sampled_from(["REGISTER", "INVITE", "OPTIONS"]))
def test_authorization_round_trip(username, password, realm, nonce, uri, opaque, algorithm, qop, nc, cnonce, body,
                                  method):
    chal = Challenge(realm, nonce, algorithm, qop, opaque, False, True)
    value = authorization(chal, method=method, uri=uri, username=username, password=password, nc=nc, cnonce=cnonce,
                          body=body)
    credentials = parse_credentials(value)
    assert (credentials.username, credentials.realm, credentials.nonce, credentials.uri, credentials.opaque) == (
        username, realm, nonce, uri, opaque)
    assert (credentials.algorithm, credentials.nc, credentials.cnonce) == (algorithm, nc, cnonce)
    assert verify(credentials, method=method, stored_ha1=ha1(algorithm, username, realm, password), body=body)
    assert not verify(credentials, method=method, stored_ha1=ha1(algorithm, username, realm, password + "x"), body=body)


# Fragments that make near-valid headers, so generated text reaches past the scheme check.
fragments = st.sampled_from([
    "Digest", "digest", " ", "\t", "\r\n ", "\r\n", ",", "=", '"', "\\", "\\\"", "realm", "nonce", "username", "uri",
    "response", "qop", "nc", "cnonce", "algorithm", "opaque", "stale", "auth", "auth-int", "MD5-sess", "SHA-256",
    "00000001", "0000000G", "true", "é", "\x00", "\x7f", "\udc80",
])


@given(st.text() | st.lists(fragments, max_size=30).map("".join))
def test_any_text_parses_or_raises_digest_error(value):
    for parse in (parse_challenge, parse_credentials):
        try:
            parse(value)
        except DigestError:
            pass


@given(st.lists(st.text() | st.lists(fragments, max_size=30).map("".join), max_size=5))
def test_select_never_raises(values):
    chosen, unsupported = select_challenges(values)
    assert all(c.supported for c in chosen)
    assert len({c.realm for c in chosen}) == len(chosen)
    assert unsupported is None or unsupported.lower() not in {name.lower() for name in ALGORITHMS}


def test_a_challenge_algorithm_list_is_canonical_ordered_and_without_repeats():
    assert algorithm_list("md5") == ("MD5",)
    assert algorithm_list(" sha-256 , MD5 ") == ("SHA-256", "MD5")
    assert algorithm_list("SHA-512-256") == ("SHA-512-256",)
    for bad in ("", ",", "MD5,", "MD5,md5", "MD5-sess", "SHA-1", "SHA-256;MD5"):
        with pytest.raises(DigestError):
            algorithm_list(bad)
