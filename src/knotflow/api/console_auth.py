"""The console's sign-in on the wire: the session cookie, and the CSRF checks on every request that changes
something.

- The session cookie is HttpOnly (no script reads it), SameSite=Lax (no other site's requests carry it, except
  a person following a link to a page here, such as a run's `debug_url`), Secure when the console is served
  over https, and holds a random id the server stores only hashed.
- Every request that changes something (POST, DELETE) carries the session's CSRF token in `X-CSRF-Token`; the
  page gets it from `GET /console/api/session`, which another site cannot read. A request a browser marks as
  cross-site (`Sec-Fetch-Site`) is refused before anything else.
- Signing in is a change too: before a session exists, the CSRF token is a random value the server also sets
  in a short-lived SameSite=Strict cookie scoped to the sign-in path (a double submit), so another site cannot
  sign a person in to its own token.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from knotflow.errors import PermissionDenied, Unauthenticated
from knotflow.service.access import PERMISSION_READ, check_permission
from knotflow.service.sessions import ConsoleSessions
from knotflow.store.records import ConsoleSession, Token

SESSION_COOKIE = "knotflow_session"
SIGN_IN_COOKIE = "knotflow_sign_in"
CSRF_HEADER = "x-csrf-token"
SESSION_PATH = "/console/api/session"
_SIGN_IN_SECONDS = 3600
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _same(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(str(given).encode(), str(expected).encode())


class ConsoleAuth:
    def __init__(self, sessions: ConsoleSessions, *, secure: bool) -> None:
        self.sessions = sessions
        self.secure = secure

    @staticmethod
    def check_origin(request: Request) -> None:
        if request.method in _CHANGES and request.headers.get("sec-fetch-site") not in (None, "same-origin",
                                                                                           "none"):
            raise PermissionDenied("the console refuses changes requested by another site")

    async def current(self, request: Request) -> tuple[ConsoleSession, Token] | None:
        return await self.sessions.resolve(request.cookies.get(SESSION_COOKIE, ""))

    async def require(self, request: Request, permission: str | None = PERMISSION_READ) -> Token:
        """The signed-in token, holding `permission` (checked before anything is looked up); for a change, only
        with the session's CSRF token."""
        self.check_origin(request)
        found = await self.current(request)
        if found is None:
            raise Unauthenticated("sign in to the console first")
        session, token = found
        if request.method in _CHANGES and not _same(request.headers.get(CSRF_HEADER), session.csrf):
            raise PermissionDenied("the request lacks the console's CSRF token")
        if permission is not None:
            check_permission(token, permission)
        return token

    # --- signing in and out ------------------------------------------------------------------------------
    @staticmethod
    def sign_in_csrf(request: Request) -> str:
        """The CSRF token a sign-in must carry: the one already in the sign-in cookie, else a new one."""
        return request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)

    def remember_sign_in_csrf(self, response: Response, value: str) -> None:
        response.set_cookie(SIGN_IN_COOKIE, value, max_age=_SIGN_IN_SECONDS, path=SESSION_PATH, secure=self.secure,
                            httponly=True, samesite="strict")

    def check_sign_in(self, request: Request) -> None:
        self.check_origin(request)
        if not _same(request.headers.get(CSRF_HEADER), request.cookies.get(SIGN_IN_COOKIE)):
            raise PermissionDenied("the sign-in lacks the console's CSRF token: reload the page")

    def start_session(self, response: Response, session_id: str) -> None:
        response.set_cookie(SESSION_COOKIE, session_id, max_age=int(self.sessions.ttl), path="/",
                            secure=self.secure, httponly=True, samesite="lax")
        response.delete_cookie(SIGN_IN_COOKIE, path=SESSION_PATH, secure=self.secure, httponly=True,
                               samesite="strict")

    async def end_session(self, request: Request, response: Response) -> None:
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            await self.sessions.sign_out(session_id)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=self.secure, httponly=True, samesite="lax")
