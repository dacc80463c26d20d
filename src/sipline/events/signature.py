"""The signature of a delivery (docs/behaviour.md#event-signature), as Stripe signs webhooks:

    X-Sipline-Signature: t=<unix time>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>

The key is the app's client secret, or the portal's signing secret for a webhook's handlers; it
never travels. `t` is the time of signing (a retry signs again), so a receiver can refuse old ones.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Sipline-Signature"


def signature(key: str, body: str, t: int) -> str:
    digest = hmac.new(key.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verified(key: str, header: str, body: str) -> bool:
    """The receiver's check (README): the header's v1 is the HMAC of its t and the body."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if "t" not in fields or "v1" not in fields:
        return False
    return hmac.compare_digest(signature(key, body, int(fields["t"])).split("v1=")[1], fields["v1"])
