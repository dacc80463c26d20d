"""What every dashboard page shares (docs/behaviour.md#dashboard): the templates, who is signed in,
what they may see, the CSRF check of every change, and the pages that refuse.

Rights are REST's: an admin sees everything of the portal, a user with "Manage numbers — modify" the
telephony pages, anyone else nothing; the operator (an admin of the first portal) also sees every
portal. A request's portal is the one its Host names, as for REST; a session counts only there.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from sipline.accounts.dashboard import Visitor, csrf_matches
from sipline.rest.envelope import local_iso
from sipline.telephony.caller import Caller
from sipline.telephony.services import Services

COOKIE = "sipline_session"
HERE = Path(__file__).parent
MAX_FORM_FIELDS = 32


class Need(enum.Enum):
    """What a page asks of its visitor."""

    SIGNED_IN = "signed in"  # anyone signed in (a user with no right sees only that)
    TELEPHONY = "telephony"  # "Manage numbers — modify" (admins have it)
    ADMIN = "admin"
    OPERATOR = "operator"  # an admin of the first portal


class Refused(Exception):
    """A page or change that is not answered as asked; `response` is what is answered instead."""

    def __init__(self, response: Response) -> None:
        self.response = response


class Site:
    def __init__(self, services: Services, *, secure_cookie: bool) -> None:
        self.services = services
        self.secure_cookie = secure_cookie
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["when"] = when
        self.templates.env.globals["STATUS_WORDS"] = STATUS_WORDS

    def page(self, request: Request, name: str, visitor: Visitor | None, status: int = 200, **context: Any) -> Response:
        return self.templates.TemplateResponse(
            request, name, {"visitor": visitor, **context}, status_code=status, headers=SECURITY_HEADERS
        )

    def message(self, request: Request, visitor: Visitor | None, title: str, text: str, status: int) -> Response:
        return self.page(request, "message.html", visitor, status=status, title=title, text=text)

    async def visitor(self, request: Request) -> Visitor | None:
        portal = await self.services.accounts.portal_for_host(request.headers.get("host"))
        return await self.services.dashboard.visitor(request.cookies.get(COOKIE), portal)

    async def allowed(self, request: Request, need: Need) -> Visitor:
        """The visitor, if they may see a page that needs `need`. Raises: Refused with the signed-out
        page (no session) or a page that says the user has no right to it."""
        visitor = await self.visitor(request)
        if visitor is None:
            raise Refused(self.page(request, "signed_out.html", None, status=401))
        if not may(visitor, need):
            raise Refused(self.message(request, visitor, "No access", "Your user has no right to see this page.", 403))
        return visitor

    async def change(self, request: Request, need: Need) -> tuple[Visitor, FormData]:
        """A POST's visitor and form, once its CSRF token matches the session's. Raises: Refused."""
        visitor = await self.allowed(request, need)
        try:
            form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        except Exception:  # a body that is no form: refused like a forged one, nothing changed
            form = FormData()
        given = form.get("csrf") or request.headers.get("x-csrf-token")
        if not csrf_matches(visitor, given if isinstance(given, str) else None):
            raise Refused(
                self.message(
                    request,
                    visitor,
                    "Refused",
                    "This change did not come from a page of this session (its CSRF token is missing or wrong). "
                    "Reload the page and try again.",
                    403,
                )
            )
        return visitor, form


def may(visitor: Visitor, need: Need) -> bool:
    if need is Need.SIGNED_IN:
        return True
    if need is Need.TELEPHONY:
        return visitor.sees_telephony
    if need is Need.ADMIN:
        return visitor.is_admin
    return visitor.is_operator


def caller_of(visitor: Visitor) -> Caller:
    """The identity the telephony rules check, for a dashboard user: every app's lines of the portal."""
    return Caller(
        portal_id=visitor.portal.id,
        user_number=visitor.user_number,
        app_id="",
        scopes=frozenset({"telephony"}),
        can_modify_numbers=visitor.can_modify_numbers,
        is_admin=visitor.is_admin,
        every_app=True,
    )


def field(form: FormData, name: str) -> str | None:
    """A text field of a form; None when absent or empty."""
    value = form.get(name)
    return value if isinstance(value, str) and value != "" else None


def when(timestamp: float | None) -> str:
    return local_iso(timestamp).replace("T", " ") if timestamp else "—"


# docs/behaviour.md#reg-status: each STATUS_RESULT as a word and a colour class
STATUS_WORDS = {
    "success": ("Registered", "ok"),
    "error": ("Failing", "bad"),
    "in_progress": ("Registering", "busy"),
    "wait": ("Waiting", "idle"),
}

SECURITY_HEADERS = {
    # nothing is fetched from elsewhere; no page may frame these
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
