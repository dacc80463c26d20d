"""Numbers from a peer, a client or an operator: DIGIT is %x30-39 only, and never a crash."""

import pytest

from sipline.server import settings as config
from sipline.sip.grammar import is_digits


@pytest.mark.parametrize("text", ["", "²", "٣", "1²", "-1", "+1", " 1", "1.0", "12345678901"])
def test_anything_but_ascii_digits_within_the_length_is_not_a_number(text):
    assert not is_digits(text, 10)


@pytest.mark.parametrize("text", ["0", "0001", "4294967295", "9" * 10])
def test_ascii_digits_within_the_length_are_a_number(text):
    assert is_digits(text, 10)


@pytest.mark.parametrize("parse", [config.parse_port, config.parse_positive, config.parse_count])
@pytest.mark.parametrize("text", ["²", "٣", "9" * 5000, ""])
def test_a_setting_in_other_digits_is_a_config_error(parse, text):
    with pytest.raises(config.ConfigError):
        parse(text, "setting")
