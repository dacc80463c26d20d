"""The key files: which ones a start tries, and what settling on one leaves (store/keys.py)."""

from __future__ import annotations

import base64
import stat

import pytest

from sipline.store.crypto import KeyMaterialError
from sipline.store.keys import KEY_FILE, PENDING_FILE, PREVIOUS_FILE, KeyFiles


def files(tmp_path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(tmp_path.glob("secret.key*"))}


def test_a_first_start_makes_a_private_key_file(tmp_path):
    [(name, key)] = KeyFiles(tmp_path, None).candidates()
    assert name == KEY_FILE and len(key) == 32 and files(tmp_path) == {KEY_FILE: key}
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_every_key_file_is_tried_current_first(tmp_path):
    for name, key in ((PREVIOUS_FILE, b"o" * 32), (KEY_FILE, b"c" * 32), (PENDING_FILE, b"n" * 32)):
        (tmp_path / name).write_bytes(key)
    assert KeyFiles(tmp_path, None).candidates() == [(KEY_FILE, b"c" * 32), (PENDING_FILE, b"n" * 32),
                                                     (PREVIOUS_FILE, b"o" * 32)]


@pytest.mark.parametrize(("opens", "kept"), [(KEY_FILE, b"c" * 32), (PENDING_FILE, b"n" * 32),
                                             (PREVIOUS_FILE, b"o" * 32)])
def test_the_key_that_opens_the_store_becomes_the_key_file(tmp_path, opens, kept):
    for name, key in ((PREVIOUS_FILE, b"o" * 32), (KEY_FILE, b"c" * 32), (PENDING_FILE, b"n" * 32)):
        (tmp_path / name).write_bytes(key)
    KeyFiles(tmp_path, None).settle(opens)
    assert files(tmp_path) == {KEY_FILE: kept}


def test_a_promotion_leaves_the_new_key_alone(tmp_path):
    keys = KeyFiles(tmp_path, None)
    (tmp_path / KEY_FILE).write_bytes(b"c" * 32)
    keys.write_pending(b"n" * 32)
    keys.promote()
    assert files(tmp_path) == {KEY_FILE: b"n" * 32}


def test_with_the_key_in_the_environment_no_file_is_made_or_changed(tmp_path):
    (tmp_path / PENDING_FILE).write_bytes(b"n" * 32)
    keys = KeyFiles(tmp_path, base64.b64encode(b"e" * 32).decode())
    assert keys.candidates() == [("SIPLINE_SECRET_KEY", b"e" * 32)]
    keys.settle("SIPLINE_SECRET_KEY")
    assert files(tmp_path) == {PENDING_FILE: b"n" * 32}
    assert "secret.key.new holds the key" in str(keys.refusal(KeyMaterialError("does not open")))


def test_a_key_file_of_the_wrong_size_is_refused(tmp_path):
    (tmp_path / KEY_FILE).write_bytes(b"short")
    with pytest.raises(KeyMaterialError, match="must hold exactly 32 bytes"):
        KeyFiles(tmp_path, None).candidates()


def test_an_operator_command_finds_no_key_and_makes_none(tmp_path):
    with pytest.raises(KeyMaterialError, match="secret.key is missing"):
        KeyFiles(tmp_path, None, create=False).candidates()
    assert files(tmp_path) == {}
    (tmp_path / KEY_FILE).write_bytes(b"c" * 32)
    assert KeyFiles(tmp_path, None, create=False).candidates() == [(KEY_FILE, b"c" * 32)]
