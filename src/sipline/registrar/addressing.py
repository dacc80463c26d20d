"""What a REGISTER names, read once per distinct text: the To user and host, the Request-URI's target, and
whether a digest `uri` names that target (docs/behaviour.md#office-order, docs/behaviour.md#office-digest);
and how much of a name a sender may make sipline keep or log (docs/behaviour.md#office-abuse)."""

from __future__ import annotations

from sipline.registrar.memo import short_text_memo
from sipline.sip import digest
from sipline.sip.errors import BadRequest
from sipline.sip.headers import NameAddr, split_list
from sipline.sip.message import Request
from sipline.sip.uri import SipUri

# docs/behaviour.md#office-abuse: what of a REGISTER may reach a table or a log line. INCOMING_LOGIN is `sip` and a number and
# LOGIN at most 100 characters (docs/behaviour.md#line-record); a realm is a DNS name of at most 253.
MAX_USERNAME = 128
MAX_REALM = 255
SUPPORTED_OPTIONS = frozenset({"path"})  # docs/behaviour.md#office-order step 2: what Require may name
MAX_LOGGED = 64  # characters of a username in a security event; longer ones end in "…"


# The same few Request-URIs and To values come again with every REGISTER of a PBX: what they
# mean is remembered (strings in, strings out, bounded) rather than parsed each time.


def to_user(request: Request) -> str | None:
    return _to_parts(request.headers.get("To") or "")[0]


def to_host(request: Request) -> str | None:
    return _to_parts(request.headers.get("To") or "")[1]


@short_text_memo(16384)
def _to_parts(to: str) -> tuple[str | None, str | None]:
    """(user, lower-case host) of a To header value."""
    try:
        uri = SipUri.parse(NameAddr.parse(to).uri)
    except BadRequest:
        return None, None
    return uri.user, uri.host.lower()


@short_text_memo(1024)
def uri_target(uri: str) -> tuple[str, str, int | None] | None:
    """(scheme, lower-case host, port) of a SIP URI, None if it is not one."""
    try:
        parsed = SipUri.parse(uri)
    except BadRequest:
        return None
    return parsed.scheme, parsed.host.lower(), parsed.port


def same_target(uri: str, request_uri: str) -> bool:
    """docs/behaviour.md#office-digest: the digest `uri` names the Request-URI (scheme, host and port; parameters aside)."""
    mine = uri_target(uri) if uri != request_uri else uri_target(request_uri)
    return mine is not None and mine == uri_target(request_uri)


def loggable(username: str | None) -> str | None:
    """docs/behaviour.md#office-abuse: at most MAX_LOGGED characters of a username reach a log line."""
    if username is None or len(username) <= MAX_LOGGED:
        return username
    return username[:MAX_LOGGED] + "…"


def credentials_for(request: Request, realm: str) -> digest.Credentials | None:
    """The REGISTER's credentials for `realm`, None if there are none. Raises: BadRequest."""
    for value in request.headers.get_all("Authorization"):
        try:
            credentials = digest.parse_credentials(value)
        except digest.DigestError:
            raise BadRequest("malformed Authorization") from None
        if len(credentials.username) > MAX_USERNAME or len(credentials.realm) > MAX_REALM:
            raise BadRequest("username or realm too long")  # docs/behaviour.md#office-abuse: before any state is kept
        if credentials.realm == realm:
            return credentials
    return None


def unsupported_options(request: Request) -> list[str]:
    """The option tags of Require that sipline does not support (docs/behaviour.md#office-order step 2)."""
    tags = [tag.strip() for value in request.headers.get_all("Require") for tag in split_list(value)]
    return [tag for tag in tags if tag.lower() not in SUPPORTED_OPTIONS]
