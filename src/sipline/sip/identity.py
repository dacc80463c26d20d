"""What names a user agent's registration: its Call-ID and the user part of its Contact.

Both come from an injected random source. A cloud line's first ones are drawn when the line is
made (telephony/) and kept in the store; the registration core draws a new Call-ID when the
line's account changes (docs/behaviour.md#reg-lifecycle).
"""

from __future__ import annotations

import random


def new_call_id(rng: random.Random) -> str:
    """RFC 3261 §8.1.1.4: a Call-ID unique over space and time, here 128 random bits in hex."""
    return f"{rng.getrandbits(128):032x}"


def new_contact_token(rng: random.Random) -> str:
    """docs/behaviour.md#reg-request: the Contact user part, `l` + 16 hex digits, for the line's life."""
    return f"l{rng.getrandbits(64):016x}"
