"""The OAuth consent page (docs/behaviour.md#oauth-consent): `/oauth/authorize/` sends the browser
here, where the signed-in user sees the application and its scopes and allows or denies.

Only the user who is signed in can be given a code, so nobody can ask for another user's (the
`user_id` of the old query is ignored). Who may consent is accounts/oauth.py's rule; what an allowed
code is answered with is the OAuth server's (rest/oauth_server.py `code_answer`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from sipline.accounts.dashboard import Visitor
from sipline.accounts.oauth import UnknownClient, UserRefused
from sipline.rest.oauth_server import CONSENT_PATH, Urls, code_answer, to_handler
from sipline.rest.registry import METHODS
from sipline.store.records import App
from sipline.web.site import SECURITY_HEADERS, Need, Refused, Site, field

# what a scope lets the application do here; a scope sipline serves no method of is said to be so
SCOPE_MEANINGS = {
    "telephony": "see and change the portal's SIP lines and its outgoing line (voximplant.*, sipline.*)",
}
MAX_STATE = 1024  # RFC 6749 §4.1.1 sets no bound; a longer state is cut, not refused
ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


class Consent:
    """The consent page's routes; `urls` shape the code's answer as `/oauth/authorize/` did."""

    def __init__(self, urls: Urls) -> None:
        self.urls = urls
        self.routes = [(CONSENT_PATH, self.ask, ("GET",)), (CONSENT_PATH, self.answer, ("POST",))]

    async def ask(self, site: Site, request: Request) -> Response:
        visitor = await site.allowed(request, Need.SIGNED_IN)
        query = request.query_params
        try:
            app = await site.services.oauth.consent(query.get("client_id", ""), visitor.portal, visitor.user_number)
        except (UnknownClient, UserRefused) as error:
            raise refusal(site, request, visitor, error) from None
        state = query.get("state", "")[:MAX_STATE]
        response = site.page(request, "consent.html", visitor, app=app, scopes=scope_rows(app), state=state)
        allow_form_redirect(response, app)
        return response

    async def answer(self, site: Site, request: Request) -> Response:
        """Allow: a code for the signed-in user, answered as docs/behaviour.md#oauth-server says.
        Deny (any other answer): the handler gets `error=access_denied` (RFC 6749 §4.1.2.1), or a
        page says so."""
        visitor, form = await site.change(request, Need.SIGNED_IN)
        client_id, state = field(form, "client_id") or "", (field(form, "state") or "")[:MAX_STATE]
        oauth = site.services.oauth
        try:
            if field(form, "decision") == "allow":
                code, app = await oauth.authorize(client_id, visitor.portal, visitor.user_number)
                return code_answer(app, self.urls.code_fields(code, app, visitor.portal, state))
            app = await oauth.consent(client_id, visitor.portal, visitor.user_number)
        except (UnknownClient, UserRefused) as error:
            raise refusal(site, request, visitor, error) from None
        if app.handler_url:
            return to_handler(app, {"error": "access_denied", **({"state": state} if state else {})})
        return site.message(request, visitor, "Not authorized", f"{app.name} was not given access.", 200)


def refusal(site: Site, request: Request, visitor: Visitor, error: UnknownClient | UserRefused) -> Refused:
    """The page for a code that cannot be given: 400 for a client_id not installed on this portal,
    403 for a user the app does not allow."""
    if isinstance(error, UnknownClient):
        text = "No application with this client_id is installed on this portal."
        return Refused(site.message(request, visitor, "Unknown application", text, 400))
    text = f"Your user cannot authorize this application: {error}"
    return Refused(site.message(request, visitor, "Not allowed", text, 403))


def scope_rows(app: App) -> list[tuple[str, str]]:
    served = {method.scope for method in METHODS.values()}
    return [
        (scope, SCOPE_MEANINGS.get(scope, "") if scope in served else "sipline serves no method of this scope")
        for scope in sorted(app.scopes)
    ]


def allow_form_redirect(response: Response, app: App) -> None:
    """The Allow/Deny form posts here and is redirected to the app's handler; browsers hold that
    redirect to the page's `form-action` (CSP), so the handler's origin is added to it."""
    parts = urlsplit(app.handler_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if app.handler_url and ORIGIN.fullmatch(origin):
        policy = SECURITY_HEADERS["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {origin}"
        )
