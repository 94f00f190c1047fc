"""Auth building blocks without a database: tokens, throttle, client address, messages,
directory, password hasher and the middleware's hit/miss/revocation logic."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from revenge.config import load_settings
from revenge.http import Problem
from revenge.modules.auth.authenticator import Authenticator
from revenge.modules.auth.directory import UserDirectory
from revenge.modules.auth.passwords import PasswordHasher
from revenge.modules.auth.revocation import encode_token, encode_user, parse
from revenge.modules.auth.service import check_new_credentials
from revenge.modules.auth.throttle import Policy, network_of
from revenge.modules.auth.tokens import api_key_id, new_api_key, new_session_token, token_hash
from revenge.runtime.errors import ServiceUnavailable
from tests.cheap_settings import FAST_ARGON2
from tests.unit.auth_support import FakeStore, credential, make_authenticator, make_request

# -- tokens ------------------------------------------------------------------------------


def test_session_tokens_are_long_url_safe_and_unique() -> None:
    tokens = {new_session_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert len(token) >= 43  # 32 bytes, base64url without padding
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_token_hash_is_sha256_hex() -> None:
    assert token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_api_key_embeds_its_public_id_only() -> None:
    key, key_id = new_api_key()
    assert api_key_id(key) == key_id and len(key_id) == 16
    assert api_key_id(new_session_token()) is None
    assert api_key_id("rvk_0123456789abcdef") is None  # no secret part
    assert api_key_id("rvk_0123456789abcdefX" + "a" * 40) is None


# -- throttle ----------------------------------------------------------------------------
# The counters live in PostgreSQL: tests/integration/test_login_throttle.py.


def test_policy_delays_grow_and_cap() -> None:
    policy = Policy(free=2, base=1.0, cap=5.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.0, 0.0, 1.0, 2.0, 4.0, 5.0]


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2:ffff::9]", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("not an address", "not an address"),
    ],
)
def test_the_throttle_counts_ipv6_by_its_64(ip: str, network: str) -> None:
    assert network_of(ip) == network


# -- revocation messages -----------------------------------------------------------------


def test_revocation_messages_round_trip_and_reject_garbage() -> None:
    digest = token_hash("x")
    assert parse(encode_token(digest)) == ("s", digest)
    assert parse(encode_user(42)) == ("u", 42)
    for junk in ("", "s:", "s:" + "G" * 64, "s:abc", "u:", "u:-1", "u:1.5", "z:1", "s" * 80):
        assert parse(junk) is None


# -- directory ---------------------------------------------------------------------------


def test_directory_serialises_me_once_and_follows_changes() -> None:
    directory = UserDirectory(max_entries=3)
    created = datetime(2026, 1, 2, tzinfo=UTC)
    first = directory.put(1, "ann", "user", created)
    assert directory.put(1, "ann", "user", created) is first
    renamed = directory.put(1, "anne", "admin", created)
    assert renamed is not first and b'"anne"' in renamed.me_body and b'"admin"' in renamed.me_body
    for n in range(2, 6):
        directory.put(n, f"u{n}", "user", created)
    assert len(directory) <= 3


# -- passwords ---------------------------------------------------------------------------


async def test_password_hash_round_trip_uses_argon2id() -> None:
    hasher = PasswordHasher(load_settings(env=FAST_ARGON2).auth)
    try:
        stored = await hasher.hash("correct horse battery")
        assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        assert await hasher.verify(stored, "correct horse battery")
        assert not await hasher.verify(stored, "wrong horse battery")
        assert not await hasher.verify("not-a-hash", "x")
        assert not hasher.needs_rehash(stored)
        stronger = PasswordHasher(
            load_settings(env={**FAST_ARGON2, "REVENGE_AUTH__ARGON2_TIME_COST": "2"}).auth
        )
        assert stronger.needs_rehash(stored)
        stronger.close()
    finally:
        hasher.close()


async def test_hash_concurrency_cap_answers_service_unavailable() -> None:
    settings = load_settings(
        env={
            **FAST_ARGON2,
            "REVENGE_AUTH__ARGON2_TIME_COST": "40",
            "REVENGE_AUTH__MAX_CONCURRENT_HASHES": "1",
        }
    )
    hasher = PasswordHasher(settings.auth, waiting=1)
    try:
        results = await asyncio.gather(
            *(hasher.hash(f"password-{n}") for n in range(4)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, ServiceUnavailable)]
        hashed = [r for r in results if isinstance(r, str)]
        assert len(hashed) == 2 and len(refused) == 2
        assert refused[0].code == "auth_unavailable" and refused[0].retry_after >= 1
        assert hasher.in_flight == 0 and hasher.rejected == 2
    finally:
        hasher.close()


def test_new_credentials_are_checked() -> None:
    assert check_new_credentials(" alice", "long enough") == "alice"
    assert check_new_credentials("\uff41lice", "long enough") == "alice"  # fullwidth a
    for name, password in (
        ("", "long enough"),
        ("a b", "long enough"),
        ("x" * 65, "long enough"),
        ("alice", "short"),
        ("alice", "x" * 1025),
        ("bell\x07", "long enough"),
        ("p\u0430ypal", "long enough"),  # a Cyrillic a among Latin letters
    ):
        with pytest.raises(ValueError):
            check_new_credentials(name, password)


# -- the middleware ----------------------------------------------------------------------


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def authenticator(store: FakeStore) -> Authenticator:
    return make_authenticator(store)


async def test_miss_then_hit_without_lookup(authenticator: Authenticator, store: FakeStore) -> None:
    token = new_session_token()
    store.sessions[token_hash(token)] = credential()
    for _ in range(5):
        principal = await authenticator(make_request({"authorization": f"Bearer {token}"}))
        assert (principal.user_id, principal.username, principal.via) == (7, "alice", "session")
        assert principal.credential_id == token_hash(token)
    assert store.lookups == 1 and authenticator.misses == 1
    cookie = await authenticator(make_request({"cookie": f"revenge_session={token}"}))
    assert cookie.user_id == 7 and store.lookups == 1


async def test_a_session_is_not_served_from_the_cache_past_its_own_expiry(
    authenticator: Authenticator, store: FakeStore
) -> None:
    """The cache entry ends with the session, even when the cache's TTL (60 s) runs longer."""
    token = new_session_token()
    store.sessions[token_hash(token)] = replace(credential(), expires_at=time.time() + 30)
    request = make_request({"authorization": f"Bearer {token}"})
    await authenticator(request)
    await authenticator(request)
    assert store.lookups == 1  # the second was a hit
    authenticator._cache.advance_clock(31)  # past the session's expiry, inside the cache TTL
    await authenticator(make_request({"authorization": f"Bearer {token}"}))
    assert store.lookups == 2  # asked the store again instead of trusting the expired entry


async def test_a_deaf_worker_asks_the_store_every_time(store: FakeStore) -> None:
    """While revocations may pass it by, a worker treats its cache hits as misses."""
    authenticator = make_authenticator(store, listening=False)
    token = new_session_token()
    store.sessions[token_hash(token)] = credential()
    request = make_request({"authorization": f"Bearer {token}"})
    for _ in range(3):
        assert (await authenticator(request)).user_id == 7
    assert store.lookups == 3 and authenticator.cached(request) is None
    del store.sessions[token_hash(token)]  # revoked by another worker, message unheard
    with pytest.raises(Problem):
        await authenticator(request)
    authenticator.trust_cache(True)  # listening again (after emptying the cache)
    authenticator.forget_everything()
    store.sessions[token_hash(token)] = credential()
    await authenticator(request)
    assert authenticator.cached(request) is not None and store.lookups == 5


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"authorization": "Bearer "},
        {"authorization": "Bearer " + "x" * 600},
        {"cookie": "other=1"},
        {"cookie": "revenge_session="},
        {"authorization": "Bearer unknown-token-value"},
    ],
)
async def test_missing_or_bad_credentials_are_401(
    authenticator: Authenticator, headers: dict[str, str]
) -> None:
    with pytest.raises(Problem) as caught:
        await authenticator(make_request(headers))
    assert caught.value.status == 401 and caught.value.code == "unauthenticated"
    assert ("www-authenticate", 'Bearer realm="revenge"') in caught.value.headers


async def test_api_keys_and_sessions_do_not_cross(
    authenticator: Authenticator, store: FakeStore
) -> None:
    key, key_id = new_api_key()
    store.keys[token_hash(key)] = credential()
    principal = await authenticator(make_request({"x-api-key": key}))
    assert principal.via == "api_key" and principal.credential_id == key_id
    again = await authenticator(make_request({"x-api-key": key}))  # from the cache
    assert again.credential_id == key_id and store.lookups == 1
    with pytest.raises(Problem):  # the key sent as a session token
        await authenticator(make_request({"authorization": f"Bearer {key}"}))
    token = new_session_token()
    store.sessions[token_hash(token)] = credential()
    await authenticator(make_request({"authorization": f"Bearer {token}"}))
    with pytest.raises(Problem):  # a session token sent as an API key
        await authenticator(make_request({"x-api-key": token}))


async def test_revocations_evict(authenticator: Authenticator, store: FakeStore) -> None:
    token, other = new_session_token(), new_session_token()
    store.sessions[token_hash(token)] = credential()
    store.sessions[token_hash(other)] = credential()
    await authenticator(make_request({"authorization": f"Bearer {token}"}))
    await authenticator(make_request({"authorization": f"Bearer {other}"}))
    del store.sessions[token_hash(token)]
    authenticator.revoke_hash(token_hash(token))
    with pytest.raises(Problem):
        await authenticator(make_request({"authorization": f"Bearer {token}"}))
    await authenticator(make_request({"authorization": f"Bearer {other}"}))
    store.sessions.clear()
    authenticator.revoke_user(7)
    with pytest.raises(Problem):
        await authenticator(make_request({"authorization": f"Bearer {other}"}))


async def test_a_revocation_during_a_miss_keeps_the_result_out_of_the_cache(
    authenticator: Authenticator, store: FakeStore
) -> None:
    token = new_session_token()
    store.sessions[token_hash(token)] = credential()
    store.gate = asyncio.Event()
    pending = asyncio.create_task(authenticator(make_request({"authorization": f"Bearer {token}"})))
    await asyncio.sleep(0.01)  # the lookup has read the row and waits
    authenticator.revoke_hash(token_hash(token))
    store.gate.set()
    assert (await pending).user_id == 7  # that request began before the revocation
    del store.sessions[token_hash(token)]
    with pytest.raises(Problem):  # but nothing stale was cached
        await authenticator(make_request({"authorization": f"Bearer {token}"}))
    assert store.lookups == 2


async def test_ready_principals_follow_user_changes(
    authenticator: Authenticator, store: FakeStore
) -> None:
    token = new_session_token()
    store.sessions[token_hash(token)] = credential(7, "alice")
    first = await authenticator(make_request({"authorization": f"Bearer {token}"}))
    assert await authenticator(make_request({"authorization": f"Bearer {token}"})) is first
    store.sessions[token_hash(token)] = credential(7, "alice2")  # renamed, then announced
    authenticator.revoke_user(7)
    renamed = await authenticator(make_request({"authorization": f"Bearer {token}"}))
    assert renamed.username == "alice2" and store.lookups == 2
    assert await authenticator(make_request({"authorization": f"Bearer {token}"})) is renamed


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("revenge_session=abc", "abc"),
        ("a=1;revenge_session=abc;b=2", "abc"),
        ("  revenge_session = abc ; b=2", "abc"),
        ('revenge_session="abc"', "abc"),
        ("xrevenge_session=abc", None),
        ("revenge_session_x=abc; other=1", None),
        ("revenge_session", None),
        ("", None),
        ("revenge_session=first; revenge_session=second", "first"),
    ],
)
def test_cookie_value(header: str, expected: str | None) -> None:
    from revenge.modules.auth.authenticator import cookie_value

    assert cookie_value(header, "revenge_session") == expected
