"""RFC 3261 §25.1 ABNF as regular-expression pieces; the ABNF is quoted above each."""

# alphanum = ALPHA / DIGIT
# domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
DOMAINLABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# toplabel = ALPHA / ALPHA *( alphanum / "-" ) alphanum
TOPLABEL = r"[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# hostname = *( domainlabel "." ) toplabel [ "." ]
HOSTNAME = rf"(?:{DOMAINLABEL}\.)*{TOPLABEL}\.?"
# IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT   (range checked by ipaddress)
IPV4ADDRESS = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
# IPv6reference = "[" IPv6address "]"   (the address itself is checked by ipaddress)
IPV6REFERENCE = r"\[[0-9A-Fa-f:.]+\]"
# host = hostname / IPv4address / IPv6reference
HOST = rf"(?:{IPV4ADDRESS}|{HOSTNAME}|{IPV6REFERENCE})"
# port = 1*DIGIT
PORT = r"[0-9]{1,5}"


def is_digits(text: str, most: int) -> bool:
    """1 to `most` DIGITs, %x30-39 only (RFC 5234 B.1): `str.isdigit` alone admits "²", which int()
    refuses, and "٣", which no ABNF allows; `most` keeps int() off a peer's thousand-digit number."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()
