"""The dashboard over plain HTTP in tests: a one-time link (`dashboard:` at start, `sipline dashboard-link`),
the session it starts, and the CSRF token a page carries for its forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.integration.operator import cli
from tests.integration.server import SiplineProcess

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def link(process: SiplineProcess, *args: str) -> str:
    """A new sign-in link of `sipline dashboard-link` (args: --user N, --portal D)."""
    return cli(process.data_dir, "dashboard-link", *args)


@contextmanager
def signed_in(process: SiplineProcess, url: str | None = None, **client_options) -> Iterator[httpx.Client]:
    """A client holding the session the link (default: a new one for user 1) started."""
    with httpx.Client(base_url=process.base_url, timeout=10, follow_redirects=False, verify=False,
                      **client_options) as client:
        answer = client.get(url or link(process))
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/", answer.text
        yield client


def csrf(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)
