"""``just mutate`` stays runnable: each mutant's target text is in today's code exactly once.

When this fails, a line that scripts/mutate.py mutates was edited: update that mutant's
``find`` (and ``replace``) in scripts/mutate.py to the new line.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mutate", ROOT / "scripts" / "mutate.py")
assert _spec is not None and _spec.loader is not None
mutate = importlib.util.module_from_spec(_spec)
sys.modules["mutate"] = mutate  # dataclasses look their module up by name
_spec.loader.exec_module(mutate)


@pytest.mark.parametrize("mutant", mutate.MUTANTS, ids=lambda m: m.id)
def test_the_mutated_text_is_there_once_and_the_mutant_compiles(mutant: object) -> None:
    path = ROOT / mutate.PKG / mutant.path  # type: ignore[attr-defined]
    text = path.read_text()
    assert text.count(mutant.find) == 1, f"{mutant.id}: update scripts/mutate.py"  # type: ignore[attr-defined]
    compile(text.replace(mutant.find, mutant.replace), str(path), "exec")  # type: ignore[attr-defined]


def test_mutant_ids_are_unique() -> None:
    ids = [m.id for m in mutate.MUTANTS]
    assert len(ids) == len(set(ids))
