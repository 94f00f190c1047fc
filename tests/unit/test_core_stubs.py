"""The typed face (_core.pyi) and the compiled module agree: names, parameters, examples."""

from __future__ import annotations

import ast
import doctest
import inspect
from pathlib import Path

import pytest

import revenge._core as core

STUB = Path(core.__file__).with_name("_core.pyi")


def _stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text())


def _stub_classes() -> dict[str, ast.ClassDef]:
    return {n.name: n for n in _stub_tree().body if isinstance(n, ast.ClassDef)}


def _params(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    return [n for n in names if n not in ("self", "cls")]


def test_every_stubbed_name_exists_at_runtime() -> None:
    tree = _stub_tree()
    names = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)} | {
        t.id
        for n in tree.body
        if isinstance(n, ast.AnnAssign)
        for t in [n.target]
        if isinstance(t, ast.Name) and not t.id.startswith("_")
    }
    missing = sorted(n for n in names if not hasattr(core, n))
    assert missing == []


@pytest.mark.parametrize("cls_name", sorted(_stub_classes()))
def test_stubbed_members_exist_with_matching_parameters(cls_name: str) -> None:
    runtime = getattr(core, cls_name)
    for node in _stub_classes()[cls_name].body:
        if not isinstance(node, ast.FunctionDef):
            continue
        assert hasattr(runtime, node.name), f"{cls_name}.{node.name} missing"
        is_property = any(
            isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list
        )
        if is_property or (node.name.startswith("__") and node.name != "__init__"):
            continue
        target = runtime if node.name == "__init__" else getattr(runtime, node.name)
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            continue  # no text signature exposed for this slot
        runtime_params = [p for p in sig.parameters if p not in ("self", "cls")]
        assert runtime_params == _params(node), f"{cls_name}.{node.name}"


def test_module_function_parameters_match() -> None:
    for node in _stub_tree().body:
        if isinstance(node, ast.FunctionDef):
            sig = inspect.signature(getattr(core, node.name))
            assert list(sig.parameters) == _params(node), node.name


def test_stub_docstring_examples_run() -> None:
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    globs = {name: getattr(core, name) for name in dir(core) if not name.startswith("__")}
    ran = 0
    for cls in _stub_classes().values():
        doc = ast.get_docstring(cls)
        if not doc or ">>>" not in doc:
            continue
        test = parser.get_doctest(doc, dict(globs), cls.name, str(STUB), 0)
        runner.run(test)
        ran += len(test.examples)
    result = runner.summarize(verbose=False)
    assert ran > 0
    assert result.failed == 0
