"""How lines are named: TITLE keys, office logins, and a new cloud line's Call-ID and Contact token."""

from __future__ import annotations

import random
import re

from sipline.sip.identity import new_call_id, new_contact_token
from sipline.telephony.line_names import office_login, title_key


def test_title_key_is_trimmed_and_caseless():
    assert title_key(" Main ") == title_key("MAIN") == "main"
    assert title_key("Straße") == title_key("STRASSE")
    assert title_key("") == ""


def test_office_login_names_the_config_id():
    assert office_login(12) == "sip12"


def test_registration_identity_shapes():
    rng = random.Random(7)
    assert re.fullmatch(r"[0-9a-f]{32}", new_call_id(rng))
    assert re.fullmatch(r"l[0-9a-f]{16}", new_contact_token(rng))
    assert new_call_id(rng) != new_call_id(rng)
