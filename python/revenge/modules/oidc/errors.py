"""What a failed provider call raises (kept apart from the HTTP client, which loads only when used)."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed; ``str()`` is safe to show (no secrets, no tokens)."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class ProviderUnavailable(ProviderError):
    """Unreachable, too slow, or a 5xx answer."""


class ProviderInvalid(ProviderError):
    """An answer that is not what the protocol says (size, syntax, shape)."""
