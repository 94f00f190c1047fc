"""A user's preferences over ASGI against the real PostgreSQL, and the playback decision reading them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from revenge.modules.auth import read_preferences
from revenge.modules.playback.decision import (
    AudioSupport,
    ClientCaps,
    Method,
    VideoSupport,
    decide,
    user_preferences,
)
from revenge.modules.playback.transcoder import MediaInfo, StreamInfo
from tests.integration.test_auth_api import Node, assert_problem, bearer, running_node

pytestmark = pytest.mark.integration

PATH = "/api/v1/me/preferences"


@pytest.fixture
async def node(migrated_url: str) -> AsyncIterator[Node]:
    async with running_node(migrated_url) as running:
        yield running


async def test_defaults_then_saved_canonical_and_per_user(node: Node) -> None:
    alice, bob = await node.token(await node.user()), await node.token(await node.user())
    reply = await node.client.get(PATH, headers=bearer(alice))
    assert reply.status_code == 200
    assert reply.json() == {
        "display_language": None,
        "audio_languages": [],
        "subtitle_languages": [],
        "subtitle_mode": "forced",
        "max_bitrate": None,
        "resume": "resume",
    }
    wanted = {
        "display_language": "pt_br",
        "audio_languages": ["JPN", "eng", "en"],  # 639-2 and -1 of one language: kept once
        "subtitle_languages": ["ger", "zh-hant-tw"],
        "subtitle_mode": "always",
        "max_bitrate": 8_000_000,
        "resume": "ask",
    }
    reply = await node.client.put(PATH, json=wanted, headers=bearer(alice))
    assert reply.status_code == 200, reply.text
    saved = {
        "display_language": "pt-BR",
        "audio_languages": ["ja", "en"],
        "subtitle_languages": ["de", "zh-Hant-TW"],
        "subtitle_mode": "always",
        "max_bitrate": 8_000_000,
        "resume": "ask",
    }
    assert reply.json() == saved
    assert (await node.client.get(PATH, headers=bearer(alice))).json() == saved
    assert (await node.client.get(PATH, headers=bearer(bob))).json()["audio_languages"] == []
    # A bitrate of 0 is no cap; leaving fields out resets them.
    reply = await node.client.put(PATH, json={"max_bitrate": 0}, headers=bearer(alice))
    assert reply.json()["max_bitrate"] is None and reply.json()["audio_languages"] == []


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"audio_languages": ["en", "xx"]}, "audio_languages.1", "unknown language 'xx'"),
        ({"subtitle_languages": ["klingon"]}, "subtitle_languages.0", "unknown language"),
        ({"display_language": "en-XX"}, "display_language", "unknown region 'XX'"),
        ({"display_language": "en-Qqqq"}, "display_language", "unknown script"),
        ({"audio_languages": ["en-US-x-private"]}, "audio_languages.0", "only language"),
        ({"audio_languages": ["e n"]}, "audio_languages.0", "pattern"),
        ({"max_bitrate": -1}, "max_bitrate", "greater than or equal to 0"),
        ({"subtitle_mode": "sometimes"}, "subtitle_mode", "'off', 'forced' or 'always'"),
        ({"resume": "maybe"}, "resume", ""),
        ({"audio_languages": ["en"] * 11}, "audio_languages", "at most 10"),
    ],
)
async def test_bad_preferences_are_clear_422_problems(
    node: Node, body: dict[str, object], field: str, says: str
) -> None:
    token = await node.token(await node.user())
    before = (await node.client.get(PATH, headers=bearer(token))).json()
    reply = await node.client.put(PATH, json=body, headers=bearer(token))
    problem = assert_problem(reply, 422, "validation_failed")
    assert problem["field"] == field
    assert says in problem["detail"], problem
    assert (await node.client.get(PATH, headers=bearer(token))).json() == before


async def test_preferences_need_a_credential(node: Node) -> None:
    assert_problem(await node.client.get(PATH), 401, "unauthenticated")
    assert_problem(await node.client.put(PATH, json={}), 401, "unauthenticated")


async def test_deleting_the_user_removes_the_preferences(node: Node) -> None:
    name = await node.user()
    token = await node.token(name)
    await node.client.put(PATH, json={"audio_languages": ["fr"]}, headers=bearer(token))
    async with node.db.connection() as conn:
        cur = await conn.execute("SELECT id FROM users WHERE username = %s", (name,))
        row = await cur.fetchone()
        assert row is not None
        await conn.execute("DELETE FROM users WHERE id = %s", (row[0],))
        cur = await conn.execute("SELECT count(*) FROM user_preferences WHERE user_id = %s", row)
        assert await cur.fetchone() == (0,)


H264 = StreamInfo(0, "video", "h264", 1920, 1080, profile="High", level=41, bit_depth=8,
                  bit_rate=6_000_000, default=True)  # fmt: skip
AUDIO_EN = StreamInfo(1, "audio", "aac", channels=2, language="eng", default=True)
AUDIO_JA = StreamInfo(2, "audio", "aac", channels=2, language="jpn")
SUB_EN = StreamInfo(3, "subtitle", "webvtt", language="eng")
SUB_DE = StreamInfo(4, "subtitle", "webvtt", language="ger")
BROWSER = ClientCaps(
    containers=frozenset({"mp4"}),
    video=(VideoSupport("h264", frozenset({"high"}), 5.1),),
    audio=(AudioSupport("aac", 2),),
)


async def test_the_playback_decision_uses_the_saved_preferences(node: Node) -> None:
    """Saved over HTTP, read by the plain function, given to the decision: tracks and cap follow."""
    name = await node.user()
    token = await node.token(name)
    media = MediaInfo("mov,mp4,m4a,3gp,3g2,mj2", 600.0, 6_300_000,
                      (H264, AUDIO_EN, AUDIO_JA, SUB_EN, SUB_DE))  # fmt: skip
    async with node.db.connection() as conn:
        cur = await conn.execute("SELECT id FROM users WHERE username = %s", (name,))
        row = await cur.fetchone()
        assert row is not None
        user_id = int(row[0])
        untouched = decide(media, BROWSER, user_preferences(await read_preferences(conn, user_id)))
    assert untouched.method is Method.DIRECT
    assert untouched.audio is not None and untouched.audio.stream == AUDIO_EN.index
    assert untouched.selected_subtitle is None
    wanted = {
        "audio_languages": ["ja"],
        "subtitle_languages": ["de"],
        "subtitle_mode": "always",
        "max_bitrate": 3_000_000,
    }
    reply = await node.client.put(PATH, json=wanted, headers=bearer(token))
    assert reply.status_code == 200, reply.text
    async with node.db.connection() as conn:
        decided = decide(media, BROWSER, user_preferences(await read_preferences(conn, user_id)))
    assert decided.audio is not None and decided.audio.stream == AUDIO_JA.index
    selected = decided.selected_subtitle
    assert selected is not None and selected.stream == SUB_DE.index
    assert decided.max_bitrate == 3_000_000 and decided.method is not Method.DIRECT
