"""What names a cloud line's registration towards its provider: its Call-ID and Contact token.

Both come from an injected random source; a line's first ones are drawn when it is made
(telephony/lines.py) and kept in the store.
"""

from __future__ import annotations

import random


def new_call_id(rng: random.Random) -> str:
    """RFC 3261 §8.1.1.4: a Call-ID unique over space and time, here 128 random bits in hex."""
    return f"{rng.getrandbits(128):032x}"


def new_contact_token(rng: random.Random) -> str:
    """docs/behaviour.md#reg-request: the Contact user part, `l` + 16 hex digits, for the line's life."""
    return f"l{rng.getrandbits(64):016x}"
