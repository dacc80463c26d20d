"""What a REGISTER does to an office line's bindings (RFC 3261 §10.3 steps 6–8; docs/behaviour.md#office-expiry, docs/behaviour.md#office-bindings, docs/behaviour.md#office-ok), pure.

`read_register` turns the request into the facts the rules need (raising
BadRequest for what cannot be parsed); `apply` takes the bindings the store holds
and returns the new ones, or raises before anything is changed:

- per Contact an expiry: its `expires`, else the Expires header, else the default;
  0 removes, below the minimum is 423 (only while the minimum is under 3600 s,
  §10.3 step 7), above the maximum is clamped (docs/behaviour.md#office-expiry);
- a Contact equal (§19.1.4) to a binding with the same Call-ID and the same CSeq is
  a retransmission (no change), a lower CSeq is 500, anything else updates (docs/behaviour.md#office-bindings);
- `Contact: *` with Expires 0 removes every binding but those of this Call-ID with
  a CSeq at least the request's (docs/behaviour.md#office-bindings);
- past max_bindings, a new binding evicts the one from the same source address,
  else the one expiring first; a PBX is never refused (docs/behaviour.md#office-bindings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import formatdate
from functools import lru_cache

from sipline.registrar.memo import short_text_memo
from sipline.sip.errors import BadExtension, BadRequest, IntervalTooBrief, SipError
from sipline.sip.grammar import is_digits
from sipline.sip.headers import MAX_DELTA, NameAddr, parse_cseq, split_list
from sipline.sip.message import Request
from sipline.sip.uri import SipUri
from sipline.store.records import Binding
from sipline.store.topics import BINDINGS

MAX_CONTACT_LENGTH = 512  # docs/behaviour.md#office-order step 6
# The store's cache topic of a line's bindings as last committed (keyed (CACHE_TOPIC, line id)), so
# that a refresh needs no read. Expired ones stay in it until the line's next REGISTER: `apply`
# skips them, and the sweeper has removed their rows.
CACHE_TOPIC = BINDINGS


class OutOfOrder(SipError):
    """§10.3 step 7: a lower CSeq for a binding of the same Call-ID."""

    status, reason = 500, "Out of order"


class PathUnsupported(BadExtension):
    """docs/behaviour.md#office-bindings: Path without `Supported: path` (RFC 3327 §5.3)."""

    def __init__(self) -> None:
        super().__init__(["path"])


@dataclass(frozen=True)
class Limits:
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_bindings: int = 3


@dataclass(frozen=True)
class ContactSpec:
    uri: str
    parsed: SipUri
    expires: int | None
    q: str | None
    instance: str | None
    reg_id: int | None


@dataclass(slots=True)  # not frozen: one per REGISTER, and a frozen class costs twice as much to make
class Register:
    """The parts of a REGISTER the binding rules read; never changed once made."""

    contacts: list[ContactSpec]  # empty: a query (or a wildcard)
    wildcard: bool
    expires: int | None
    call_id: str
    cseq: int
    transport: str
    source: tuple[str, int]
    local: tuple[str, int]
    path: tuple[str, ...] = ()
    user_agent: str | None = None
    algorithm: str = "MD5"


@dataclass(slots=True)
class Outcome:
    bindings: list[Binding]
    granted: dict[str, int] = field(default_factory=dict)  # contact → what this request granted
    changed: bool = False


def read_register(
    request: Request, *, transport: str, source: tuple[str, int], local: tuple[str, int], algorithm: str
) -> Register:
    """Raises: BadRequest (malformed Contact, Expires, CSeq; docs/behaviour.md#office-order step 6), PathUnsupported."""
    values = request.headers.get_all("Contact")
    wildcard = any(value.strip() == "*" for value in values)
    expires = _delta(request.headers.get("Expires"))
    if wildcard and (len(values) != 1 or expires != 0):
        raise BadRequest("Contact: * needs Expires: 0 and no other Contact")  # §10.3 step 6
    paths = tuple(request.headers.get_all("Path"))
    supported = {tag.strip().lower() for value in request.headers.get_all("Supported") for tag in split_list(value)}
    if paths and "path" not in supported:
        raise PathUnsupported()
    return Register(
        contacts=[] if wildcard else [_contact(value) for value in values],
        wildcard=wildcard,
        expires=expires,
        call_id=request.headers.get("Call-ID") or "",
        cseq=parse_cseq(request.headers.get("CSeq") or "")[0],
        transport=transport,
        source=source,
        local=local,
        path=paths,
        user_agent=request.headers.get("User-Agent"),
        algorithm=algorithm,
    )


@short_text_memo(16384)  # a PBX sends the same Contact with every refresh; specs are never changed
def _contact(value: str) -> ContactSpec:
    address = NameAddr.parse(value)
    if len(address.uri) > MAX_CONTACT_LENGTH:
        raise BadRequest("Contact URI longer than 512 bytes")
    try:
        parsed = SipUri.parse(address.uri)
    except BadRequest:
        raise BadRequest(f"Contact is not a SIP URI: {address.uri[:80]!r}") from None
    reg_id = address.params.get("reg-id")
    if reg_id is not None and not is_digits(reg_id, 10):
        raise BadRequest("malformed reg-id")
    return ContactSpec(
        uri=address.uri,
        parsed=parsed,
        expires=_delta(address.params.get("expires")),
        q=address.params.get("q"),
        instance=address.params.get("+sip.instance"),
        reg_id=int(reg_id) if reg_id is not None else None,
    )


def _delta(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not is_digits(text.lstrip("0") or text[-1:], 10) or int(text) > MAX_DELTA:
        raise BadRequest(f"malformed expiry {text[:20]!r}")  # docs/behaviour.md#office-expiry: non-numeric or > 2³²−1
    return int(text)


def granted(requested: int | None, limits: Limits) -> int:
    """docs/behaviour.md#office-expiry. Raises: IntervalTooBrief below the minimum, while that minimum is under an hour."""
    value = limits.default_expires if requested is None else requested
    if value == 0:
        return 0
    if value < limits.min_expires:
        if limits.min_expires < 3600:
            raise IntervalTooBrief(limits.min_expires)
        return limits.min_expires
    return min(value, limits.max_expires)


def apply(current: list[Binding], register: Register, now: float, limits: Limits) -> Outcome:
    """The bindings after `register`, from those the store holds.

    Raises: IntervalTooBrief, OutOfOrder; nothing is changed then.
    """
    bindings = [binding for binding in current if binding.expires_at > now]
    changed = len(bindings) != len(current)
    if register.wildcard:
        kept = [b for b in bindings if b.call_id == register.call_id and b.cseq >= register.cseq]
        return Outcome(kept, changed=changed or len(kept) != len(bindings))
    expiries = [
        granted(spec.expires if spec.expires is not None else register.expires, limits) for spec in register.contacts
    ]
    grants: dict[str, int] = {}
    for spec, expiry in zip(register.contacts, expiries, strict=True):
        index, existing = None, None
        for position, binding in enumerate(bindings):
            if _same_contact(binding.contact, spec):
                index, existing = position, binding
                break
        if existing is not None and existing.call_id == register.call_id:
            if register.cseq == existing.cseq:
                continue  # a retransmission: answered with the bindings as they are
            if register.cseq < existing.cseq:
                raise OutOfOrder(f"CSeq {register.cseq} after {existing.cseq}")
        changed = True
        if expiry == 0:
            if existing is not None:
                del bindings[index]  # type: ignore[arg-type]
            continue
        fresh = _binding(spec, register, expiry, now, existing)
        grants[spec.uri] = expiry
        if existing is not None:
            bindings[index] = fresh  # type: ignore[index]
        else:
            bindings = [*_make_room(bindings, register.source, limits.max_bindings - 1), fresh]
    return Outcome(bindings, grants, changed)


def _same_contact(stored: str, spec: ContactSpec) -> bool:
    """docs/behaviour.md#office-bindings: URI comparison (§19.1.4); the same text is the usual case and needs no parsing."""
    return stored == spec.uri or SipUri.parse(stored).equivalent(spec.parsed)


def _binding(spec: ContactSpec, register: Register, expiry: int, now: float, existing: Binding | None) -> Binding:
    return Binding(
        contact=spec.uri,
        expires_at=now + expiry,
        granted=expiry,
        call_id=register.call_id,
        cseq=register.cseq,
        transport=register.transport,
        source=register.source,
        local=register.local,
        q=spec.q,
        path=register.path,
        instance=spec.instance,
        reg_id=spec.reg_id,
        user_agent=register.user_agent,
        algorithm=register.algorithm,
        nat=behind_nat(spec.parsed, register.source),
        reachable=True,
        first_registered_at=existing.first_registered_at if existing else now,
        last_refreshed_at=now,
    )


def _make_room(bindings: list[Binding], source: tuple[str, int], room: int) -> list[Binding]:
    """docs/behaviour.md#office-bindings: evict the binding from the same source address, else the one expiring first."""
    while len(bindings) > room:
        same = [b for b in bindings if b.source == source]
        victim = same[0] if same else min(bindings, key=lambda b: b.expires_at)
        bindings = [b for b in bindings if b is not victim]
    return bindings


def behind_nat(contact: SipUri, source: tuple[str, int]) -> bool:
    """docs/behaviour.md#office-nat: the Contact is not where the request came from (a private Contact address seen from
    elsewhere is one case of it): requests to this PBX must go to the recorded source."""
    return (contact.host, contact.port or 5060) != source


def contact_lines(outcome: Outcome, now: float) -> list[str]:
    """docs/behaviour.md#office-ok: every binding with its remaining seconds; what this request set shows its grant exactly."""
    lines = []
    for binding in outcome.bindings:
        seconds = outcome.granted.get(binding.contact, max(0, int(binding.expires_at - now)))
        lines.append(f"<{binding.contact}>;expires={seconds}")
    return lines


def remaining_over(bindings: list[Binding], source: tuple[str, int], transport: str, now: float) -> float:
    """Seconds the longest-lived binding registered from `source` over `transport` has left; 0 if none."""
    return max(
        (
            binding.expires_at - now
            for binding in bindings
            if binding.source == source and binding.transport == transport
        ),
        default=0.0,
    )


@lru_cache(maxsize=2)
def http_date(second: int) -> str:
    """docs/behaviour.md#office-ok: the Date of a 200, made once per second."""
    return formatdate(second, usegmt=True)
