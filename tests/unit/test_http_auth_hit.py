"""``Authenticator.cached``: the hit path the dispatcher takes without an await.

It must answer exactly what ``await authenticator(request)`` answers for every
credential form, and ``None`` (never a database lookup) when the cache cannot.
"""

from __future__ import annotations

import pytest

from revenge.http import Problem
from revenge.modules.auth.authenticator import Authenticator
from revenge.modules.auth.tokens import new_api_key, new_session_token, token_hash
from tests.unit.auth_support import FakeStore, credential, make_authenticator, make_request


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def auth(store: FakeStore) -> Authenticator:
    return make_authenticator(store)


async def test_cached_is_none_before_the_first_resolution_and_the_principal_after(
    auth: Authenticator, store: FakeStore
) -> None:
    token = new_session_token()
    store.sessions[token_hash(token)] = credential()
    headers = {"authorization": f"Bearer {token}"}
    assert auth.cached(make_request(headers)) is None and store.lookups == 0
    resolved = await auth(make_request(headers))
    assert auth.cached(make_request(headers)) is resolved and store.lookups == 1


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
    auth: Authenticator, store: FakeStore, form: str
) -> None:
    token = new_session_token()
    store.sessions[token_hash(token)] = credential()
    await auth(make_request({"authorization": f"Bearer {token}"}))
    name, _, value = form.partition("=")
    hit = auth.cached(make_request({name: value.format(t=token)}))
    assert hit is not None and hit.credential_id == token_hash(token) and hit.via == "session"


async def test_api_keys_hit_only_through_their_header(
    auth: Authenticator, store: FakeStore
) -> None:
    key, key_id = new_api_key()
    store.keys[token_hash(key)] = credential()
    await auth(make_request({"x-api-key": key}))
    hit = auth.cached(make_request({"x-api-key": key}))
    assert hit is not None and hit.via == "api_key" and hit.credential_id == key_id
    assert auth.cached(make_request({"authorization": f"Bearer {key}"})) is None


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
        auth.cached(make_request(headers))
    assert caught.value.status == 401 and caught.value.code == "unauthenticated"


async def test_revocation_ends_the_fast_path(auth: Authenticator, store: FakeStore) -> None:
    token = new_session_token()
    store.sessions[token_hash(token)] = credential()
    headers = {"authorization": f"Bearer {token}"}
    await auth(make_request(headers))
    auth.revoke_hash(token_hash(token))
    assert auth.cached(make_request(headers)) is None
    del store.sessions[token_hash(token)]
    with pytest.raises(Problem):
        await auth(make_request(headers))
