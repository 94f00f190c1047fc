"""Reading a provider's JSON answers: bounded in time and size, with their HTTP cache lifetime.

Every call is bounded as a whole by ``timeout`` (httpx's own timeouts are per phase:
a server dripping one byte a second would never trip them), and a body past
``max_bytes`` is refused before it is all read. What fails says which of two things
happened, because an operator acts differently on each:

* :class:`ProviderUnavailable`: the provider could not be reached, was too slow or
  answered 5xx (it is down: try later);
* :class:`ProviderInvalid`: it answered, but not with what OpenID Connect says
  (enormous, not JSON, not an object, a required member missing: fix its setup).

A document is kept for its ``Cache-Control`` lifetime (:func:`revenge.infra.http_client.cache_lifetime`),
at most a day.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from revenge.infra.http_client import BodyRefused, cache_lifetime, read_body
from revenge.modules.oidc.errors import ProviderInvalid, ProviderUnavailable

MAX_CACHE_SECONDS = 86400.0
"""A provider asking for longer is still asked again daily (keys rotate)."""


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    status: int
    body: dict[str, Any]
    lifetime: float
    """Seconds it may be reused (``Cache-Control``), for documents that are cached."""


async def request_json(
    client: httpx.AsyncClient,
    provider: str,
    what: str,
    method: str,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 (one bound for the whole call, applied inside)
    max_bytes: int,
    default_lifetime: float = 0.0,
    data: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    accept_status: tuple[int, ...] = (200,),
) -> JsonAnswer:
    """``method url`` -> a JSON object, or :class:`ProviderUnavailable` / :class:`ProviderInvalid`.

    ``what`` names the document in errors ("discovery document", "key set", ...).
    Statuses outside ``accept_status``: 5xx is unavailable, anything else invalid,
    except that a 4xx with a JSON object body is returned for the caller to read
    (the token endpoint's ``invalid_grant``) when listed in ``accept_status``.
    """
    try:
        async with asyncio.timeout(timeout):
            async with client.stream(
                method, url, data=data, auth=auth, headers={"accept": "application/json"}
            ) as response:
                if response.status_code >= 500:
                    raise ProviderUnavailable(
                        provider, f"{what}: the provider answered {response.status_code}"
                    )
                if response.status_code not in accept_status:
                    raise ProviderInvalid(
                        provider, f"{what}: unexpected status {response.status_code}"
                    )
                try:
                    body = await read_body(response, types=None, limit=max_bytes)
                except BodyRefused as exc:
                    raise ProviderInvalid(provider, f"{what} too large: {exc}") from None
                lifetime = cache_lifetime(
                    response.headers.get("cache-control"),
                    default=default_lifetime,
                    cap=MAX_CACHE_SECONDS,
                )
                status = response.status_code
    except TimeoutError:
        raise ProviderUnavailable(provider, f"{what}: no answer within {timeout:g}s") from None
    except httpx.TransportError as exc:
        raise ProviderUnavailable(provider, f"{what}: {type(exc).__name__}") from None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProviderInvalid(provider, f"{what} is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ProviderInvalid(provider, f"{what} is not a JSON object")
    return JsonAnswer(status, parsed, lifetime)
