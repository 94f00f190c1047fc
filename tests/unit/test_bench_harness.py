"""The HTTP bench harness refuses to time or to pass what it cannot vouch for."""

from __future__ import annotations

from pathlib import Path

import pytest
from benches.http import harness
from benches.http.harness import Target, check_answers, verdicts


class Record:
    """Stands in for RunRecord: keeps what would be written."""

    def __init__(self) -> None:
        self.raws: dict[str, str] = {}
        self.lines: list[str] = []

    def raw(self, name: str, text: str) -> Path:
        self.raws[name] = text
        return Path(name)

    def print(self, line: str = "") -> None:
        self.lines.append(line)


def _serve(answers: dict[str, tuple[int, bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    def call(url: str, **_: object) -> tuple[int, bytes]:
        return answers[url]

    monkeypatch.setattr(harness, "http_call", call)


def test_a_server_answering_401_is_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    _serve({"a": (200, b'{"id":1}'), "b": (401, b'{"code":"unauthenticated"}')}, monkeypatch)
    with pytest.raises(SystemExit, match="other than 200"):
        check_answers([Target("a", "a"), Target("b", "b")], {}, Record())  # type: ignore[arg-type]


def test_different_bodies_are_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    _serve({"a": (200, b'{"id":1}'), "b": (200, b'{"id":2}')}, monkeypatch)
    with pytest.raises(SystemExit, match="bodies differ"):
        check_answers([Target("a", "a"), Target("b", "b")], {}, Record())  # type: ignore[arg-type]


def test_equal_answers_are_kept_and_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    _serve({"a": (200, b'{"id": 1}'), "b": (200, b'{"id":1}')}, monkeypatch)
    record = Record()
    assert check_answers([Target("a", "a"), Target("b", "b")], {}, record) == {"id": 1}  # type: ignore[arg-type]
    assert record.raws == {"answer-a": '200\n{"id": 1}', "answer-b": '200\n{"id":1}'}


def test_no_verdict_is_met_when_a_request_failed() -> None:
    checks = [("fast", True, "2.0x"), ("slow", False, "")]
    assert verdicts(checks, 0) == {"fast": "met (2.0x)", "slow": "NOT met"}
    refused = verdicts(checks, 1)
    assert all(v.startswith("NOT MET: 1 requests failed") for v in refused.values())
