"""``docs/configuration.md``, generated from the settings model in :mod:`revenge.config`.

Every key of every section with its type, default, environment variable and description
(the field's docstring). ``revenge config docs > docs/configuration.md`` (or
``python -m revenge.config_docs > docs/configuration.md``) regenerates it; a test fails
when the file and the model drift apart.

>>> format_duration(300.0), format_duration(0.5), format_duration(90.0)
('5m', '500ms', '90s')
>>> "REVENGE_DATABASE__MIN_CONNS" in render()
True
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel, BeforeValidator, SecretStr
from pydantic.fields import FieldInfo

from revenge.config import ENV_PREFIX, Settings, parse_duration

REGENERATE = "revenge config docs > docs/configuration.md"

_HEADER = f"""# Configuration reference

<!-- Generated from python/revenge/config.py: do not edit by hand.
     Regenerate with `{REGENERATE}`. -->

Built-in defaults < the YAML file (`$REVENGE_CONFIG`, else the packaged `offloading.yaml`,
also at `configs/offloading.yaml`) < environment variables `REVENGE_<SECTION>__<KEY>`.
Durations accept `500ms`, `30s`, `5m`, `1h`, `2d` (a bare number is seconds). Lists are
given in the environment as JSON (`'["10.0.0.0/8"]'`). Unknown keys and bad values are
errors; `revenge config check` prints the effective configuration with secrets redacted.
"""

_UNITS = (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration in the units the settings accept."""
    if seconds == 0:
        return "0s"
    for unit, size in _UNITS:
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    if (seconds * 1000).is_integer():
        return f"{int(seconds * 1000)}ms"
    return f"{seconds}s"


def _is_duration(field: FieldInfo) -> bool:
    return any(isinstance(m, BeforeValidator) and m.func is parse_duration for m in field.metadata)


def _type_name(field: FieldInfo) -> str:
    annotation = field.annotation
    if _is_duration(field):
        return "duration"
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return f"list of {getattr(item, '__name__', str(item))}"
    if annotation is SecretStr:
        return "secret string"
    if annotation is Path:
        return "path"
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{choice}`" for choice in get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def _bounds(field: FieldInfo) -> str:
    words = {
        annotated_types.Ge: ("ge", ">="),
        annotated_types.Gt: ("gt", ">"),
        annotated_types.Le: ("le", "<="),
        annotated_types.Lt: ("lt", "<"),
    }
    parts = []
    for item in field.metadata:
        for kind, (attr, sign) in words.items():
            if isinstance(item, kind):
                value = getattr(item, attr)
                shown = format_duration(float(value)) if _is_duration(field) else value
                parts.append(f"{sign} {shown}")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value: Any = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if _is_duration(field) and isinstance(value, int | float):
        return f"`{format_duration(float(value))}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str | Path):
        return f'`"{value}"`' if str(value) == "" else f"`{value}`"
    if isinstance(value, list):
        return "`[]`" if not value else f"`{value!r}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _sections() -> Iterator[tuple[str, type[BaseModel], FieldInfo]]:
    for name, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            yield name, model, field


def _item_model(field: FieldInfo) -> type[BaseModel] | None:
    """The model of a list-of-models setting (``oidc.providers``), else ``None``."""
    if get_origin(field.annotation) is not list:
        return None
    (item,) = get_args(field.annotation)
    return item if isinstance(item, type) and issubclass(item, BaseModel) else None


def undocumented() -> list[str]:
    """``section.key`` of every setting without a description (a docstring under it)."""
    missing = []
    for section, model, field in _sections():
        if not (field.description or model.__doc__):
            missing.append(section)
        missing += [f"{section}.{k}" for k, f in model.model_fields.items() if not f.description]
        for key, item in model.model_fields.items():
            nested = _item_model(item)
            if nested is not None:
                missing += [
                    f"{section}.{key}[].{k}"
                    for k, f in nested.model_fields.items()
                    if not f.description
                ]
    return missing


def render() -> str:
    """The whole reference as Markdown."""
    lines = [_HEADER]
    for section, model, field in _sections():
        lines.append(f"## `{section}`\n")
        about = field.description or (model.__doc__ or "").strip()
        if about:
            lines.append(" ".join(about.split()) + "\n")
        lines.append("| key | type | default | environment | description |")
        lines.append("|---|---|---|---|---|")
        for key, item in model.model_fields.items():
            kind, default, about = _columns(item)
            env = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            lines.append(f"| `{key}` | {kind} | {default} | `{env}` | {about} |")
        lines.append("")
        for key, item in model.model_fields.items():
            nested = _item_model(item)
            if nested is not None:
                lines += _items(f"{section}.{key}", nested)
    return "\n".join(lines)


def _items(name: str, model: type[BaseModel]) -> list[str]:
    """The keys of each item of a list-of-models setting (set as JSON in the environment)."""
    lines = [f"### `{name}` items\n"]
    if model.__doc__:
        lines.append(" ".join(model.__doc__.split()) + "\n")
    lines.append("| key | type | default | description |")
    lines.append("|---|---|---|---|")
    for key, item in model.model_fields.items():
        kind, default, about = _columns(item)
        lines.append(f"| `{key}` | {kind} | {default} | {about} |")
    lines.append("")
    return lines


def _columns(field: FieldInfo) -> tuple[str, str, str]:
    """A setting's type (with its bounds), default and description, as table cells."""
    kind = _type_name(field)
    bounds = _bounds(field)
    if bounds:
        kind = f"{kind} ({bounds})"
    return kind, _default(field), _cell(field.description or "")


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
