"""Security headers, added to every response by TetherMiddleware. A header a route already
set wins: the SDK's modal, the dashboard and the docs send their own Content-Security-Policy,
and these are only the defaults beneath them.

- every response: `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`;
  `Strict-Transport-Security` when TETHER_PUBLIC_URL is https (a browser ignores it over http).
- framing: `X-Frame-Options: DENY` and `frame-ancestors 'none'` everywhere except the hosted
  modal (/sdk/modal), which customers' pages frame. Which pages may frame it is known only once
  a token names the environment, so the modal checks the embedding origin itself.
- Content-Security-Policy: `default-src 'none'` for anything that is not a page (JSON, problem
  documents, scripts), so a response opened directly as a document can run nothing; a strict
  policy for the modal and the dashboard (scripts and styles from 'self' only; neither uses
  inline code). Pages that bring their own (the docs, the OAuth callback) keep it.
"""

from __future__ import annotations

from collections.abc import Sequence

Header = tuple[bytes, bytes]

NOT_A_PAGE_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# The modal's own policy lives in tether.sdk.assets; this one applies only if it sends none.
MODAL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'"
)
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HSTS = "max-age=31536000"

MODAL_PATH = "/sdk/modal"
DASHBOARD_PREFIX = "/admin/ui"


class SecurityHeaders:
    def __init__(self, public_url: str) -> None:
        common: list[Header] = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if public_url.startswith("https://"):
            common.append((b"strict-transport-security", HSTS.encode()))
        self.framable = tuple(common)
        self.common = (*common, (b"x-frame-options", b"DENY"))

    def add(self, path: str, headers: Sequence[Header]) -> list[Header]:
        """`headers` plus every default header the response does not already have."""
        present = {name.lower() for name, _ in headers}
        out = list(headers)
        defaults = self.framable if path == MODAL_PATH else self.common
        out.extend(header for header in defaults if header[0] not in present)
        if b"content-security-policy" not in present:
            csp = self._csp(path, headers)
            if csp is not None:
                out.append((b"content-security-policy", csp.encode()))
        return out

    @staticmethod
    def _csp(path: str, headers: Sequence[Header]) -> str | None:
        if path == MODAL_PATH:
            return MODAL_CSP
        if path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/"):
            return DASHBOARD_CSP
        content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
        if content_type.startswith(b"text/html"):
            return None  # a page of its own: it sets its policy or none
        return NOT_A_PAGE_CSP
