"""``Authenticator.cached``: the hit path the dispatcher takes without an await.

It must answer exactly what ``await authenticator(request)`` answers for every
credential form, and ``None`` (never a database lookup) when the cache cannot.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from revenge.config import load_settings
from revenge.http import Problem, Request
from revenge.modules.auth import build_session_cache
from revenge.modules.auth.authenticator import Authenticator
from revenge.modules.auth.directory import UserDirectory
from revenge.modules.auth.repository import Credential
from revenge.modules.auth.tokens import new_api_key, new_session_token, token_hash


def request(headers: dict[str, str]) -> Request:
    no_body: tuple[bytes, ...] = ()  # these requests are never read
    return Request("GET", "/api/v1/me", "", headers, "127.0.0.1", "http", _Chunks(no_body), 1024)


class _Chunks:
    def __init__(self, chunks: tuple[bytes, ...]) -> None:
        self.chunks = chunks

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._read()

    async def _read(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


class Store:
    def __init__(self) -> None:
        self.sessions: dict[str, Credential] = {}
        self.keys: dict[str, Credential] = {}
        self.lookups = 0

    async def session(self, digest: str) -> Credential | None:
        self.lookups += 1
        return self.sessions.get(digest)

    async def key(self, digest: str) -> Credential | None:
        self.lookups += 1
        return self.keys.get(digest)


def alice() -> Credential:
    return Credential(7, "alice", "user", datetime(2026, 1, 1, tzinfo=UTC), time.time() + 3600)


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def auth(store: Store) -> Authenticator:
    return Authenticator(
        build_session_cache(load_settings(env={})),
        UserDirectory(),
        resolve_session=store.session,
        resolve_api_key=store.key,
        cookie_name="revenge_session",
        api_key_header="X-Api-Key",
    )


async def test_cached_is_none_before_the_first_resolution_and_the_principal_after(
    auth: Authenticator, store: Store
) -> None:
    token = new_session_token()
    store.sessions[token_hash(token)] = alice()
    headers = {"authorization": f"Bearer {token}"}
    assert auth.cached(request(headers)) is None and store.lookups == 0
    resolved = await auth(request(headers))
    assert auth.cached(request(headers)) is resolved and store.lookups == 1


@pytest.mark.parametrize(
    "form",
    [
        "authorization=Bearer {t}",
        "authorization=bearer {t}",
        "authorization=BEARER   {t}  ",
        "authorization=Bearer \t{t}\t",
        "cookie=theme=dark; revenge_session={t}",
    ],
)
async def test_every_session_form_hits_the_same_entry(
    auth: Authenticator, store: Store, form: str
) -> None:
    token = new_session_token()
    store.sessions[token_hash(token)] = alice()
    await auth(request({"authorization": f"Bearer {token}"}))
    name, _, value = form.partition("=")
    hit = auth.cached(request({name: value.format(t=token)}))
    assert hit is not None and hit.credential_id == token_hash(token) and hit.via == "session"


async def test_api_keys_hit_only_through_their_header(auth: Authenticator, store: Store) -> None:
    key, key_id = new_api_key()
    store.keys[token_hash(key)] = alice()
    await auth(request({"x-api-key": key}))
    hit = auth.cached(request({"x-api-key": key}))
    assert hit is not None and hit.via == "api_key" and hit.credential_id == key_id
    assert auth.cached(request({"authorization": f"Bearer {key}"})) is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"authorization": "Bearer "},
        {"authorization": "Bearer    "},
        {"authorization": "Bearer " + "x" * 600},
        {"cookie": "revenge_session="},
    ],
)
def test_missing_or_malformed_credentials_are_401_on_the_fast_path_too(
    auth: Authenticator, headers: dict[str, str]
) -> None:
    with pytest.raises(Problem) as caught:
        auth.cached(request(headers))
    assert caught.value.status == 401 and caught.value.code == "unauthenticated"


async def test_revocation_ends_the_fast_path(auth: Authenticator, store: Store) -> None:
    token = new_session_token()
    store.sessions[token_hash(token)] = alice()
    headers = {"authorization": f"Bearer {token}"}
    await auth(request(headers))
    auth.revoke_hash(token_hash(token))
    assert auth.cached(request(headers)) is None
    del store.sessions[token_hash(token)]
    with pytest.raises(Problem):
        await auth(request(headers))
