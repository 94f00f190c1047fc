"""Who may read the operator's routes (the detailed ``/health``, ``/metrics``).

An administrator (session or API key, through the application's authenticator),
or a scraper sending the configured ``metrics.scrape_token`` as ``Authorization:
Bearer <token>``. The token is compared in constant time (both sides hashed
first, so not even its length leaks); an empty token accepts nothing.
"""

from __future__ import annotations

import hmac
from hashlib import sha256

from revenge.http import Authenticate, Problem, Request


class OperatorGuard:
    """``await guard(request)``: returns for an operator, raises 401 or 403 otherwise."""

    def __init__(self, authenticate: Authenticate | None, scrape_token: str) -> None:
        self._authenticate = authenticate
        self._token_digest = sha256(scrape_token.encode()).digest() if scrape_token else None

    def is_scraper(self, request: Request) -> bool:
        if self._token_digest is None:
            return False
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer ":
            return False
        offered = sha256(header[7:].strip().encode()).digest()
        return hmac.compare_digest(offered, self._token_digest)

    async def __call__(self, request: Request) -> None:
        if self.is_scraper(request):
            return
        if self._authenticate is None:
            raise Problem(
                401, "unauthenticated", "Authentication required", "send the scrape token"
            )
        principal = await self._authenticate(request)  # 401 without a valid credential
        if not principal.is_admin:
            raise Problem(403, "admin_required", "Administrator required")
