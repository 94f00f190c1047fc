"""Request decoding: msgspec against pydantic on the hot path of a declared route.

Run: ``pytest benches/bench_decode.py --benchmark-only``. Each candidate decodes
and validates the same input into the same shape with the same constraints
(bounded lengths, no NUL, ranges): a login body (JSON bytes -> object) and a
search query (the parsed query string -> object, strings converted to integers).
``revenge.http.declare`` uses msgspec: the numbers behind that choice are in
docs/architecture.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import pydantic
import pytest

_NO_NUL = r"^[^\x00]*$"

LOGIN = b'{"username":"alice","password":"correct horse battery staple"}'
QUERY = {"q": ["the matrix"], "kind": ["movie", "series"], "limit": ["20"], "offset": ["40"]}
Kind = Literal["movie", "series", "episode", "person"]


class MsgLogin(msgspec.Struct, frozen=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=150, pattern=_NO_NUL)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=_NO_NUL)]


class MsgSearch(msgspec.Struct, frozen=True):
    q: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=_NO_NUL)]
    kind: list[Kind] = []
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    offset: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0


class PydLogin(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)
    username: Annotated[str, pydantic.Field(min_length=1, max_length=150, pattern=_NO_NUL)]
    password: Annotated[str, pydantic.Field(min_length=1, max_length=1024, pattern=_NO_NUL)]


class PydSearch(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)
    q: Annotated[str, pydantic.Field(min_length=1, max_length=200, pattern=_NO_NUL)]
    kind: list[Kind] = []
    limit: Annotated[int, pydantic.Field(ge=1, le=100)] = 20
    offset: Annotated[int, pydantic.Field(ge=0, le=10_000)] = 0


def _flat(query: dict[str, list[str]]) -> dict[str, object]:
    # What the declared query does first: scalars from their one value, lists whole.
    return {k: (v if k == "kind" else v[-1]) for k, v in query.items()}


_msg_login = msgspec.json.Decoder(MsgLogin)
_pyd_login = pydantic.TypeAdapter(PydLogin)


@pytest.mark.benchmark(group="decode-login")
def test_login_msgspec(benchmark: pytest.FixtureRequest) -> None:
    result = benchmark(_msg_login.decode, LOGIN)
    assert result.username == "alice"


@pytest.mark.benchmark(group="decode-login")
def test_login_pydantic(benchmark: pytest.FixtureRequest) -> None:
    result = benchmark(_pyd_login.validate_json, LOGIN)
    assert result.username == "alice"


@pytest.mark.benchmark(group="decode-search")
def test_search_msgspec(benchmark: pytest.FixtureRequest) -> None:
    result = benchmark(lambda: msgspec.convert(_flat(QUERY), MsgSearch, strict=False))
    assert result.offset == 40


@pytest.mark.benchmark(group="decode-search")
def test_search_pydantic(benchmark: pytest.FixtureRequest) -> None:
    result = benchmark(lambda: PydSearch.model_validate(_flat(QUERY)))
    assert result.offset == 40


def test_same_refusals() -> None:
    """Both candidates refuse what the routes must refuse (so the race is fair)."""
    for raw in (b'{"username":"a\\u0000","password":"x"}', b'{"username":"","password":"x"}'):
        with pytest.raises(msgspec.ValidationError):
            _msg_login.decode(raw)
        with pytest.raises(pydantic.ValidationError):
            _pyd_login.validate_json(raw)
    bad = {**QUERY, "limit": ["0"]}
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(_flat(bad), MsgSearch, strict=False)
    with pytest.raises(pydantic.ValidationError):
        PydSearch.model_validate(_flat(bad))
