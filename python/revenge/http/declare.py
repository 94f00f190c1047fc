"""Declared input and output of a route: one pydantic model each, decoded before the handler.

A route names its models once; the router decodes and validates the request
against them, and the OpenAPI document takes its schemas from the same models::

    class LoginBody(Input):
        username: Annotated[str, text(max_length=150)]
        password: Annotated[str, text(max_length=1024)]

    async def login(request: Request, *, body: LoginBody) -> Response: ...

    ctx.route("POST", "/api/v1/auth/login", login, body=LoginBody, response=SessionOut)

The handler receives each declared model as a keyword argument (``body``, ``query``,
``params``). Bad input never reaches it: a value that does not fit is a 422 problem
``validation_failed`` whose ``field`` names the first bad value (``kinds.0``) and whose
``errors`` list every one; malformed JSON is 400 ``malformed_json``; another content
type is 415. Every string of an input must be bounded and refuse NUL (PostgreSQL
text cannot hold it): :func:`text` gives both, and :func:`declare` refuses a model
with a string that has neither a bound nor an enumeration.

Why pydantic and not msgspec: measured on this machine (``benches/bench_decode.py``)
the two decode a login body and a search query in the same ~2 us (see
docs/architecture.md), pydantic is already a dependency, and its errors are
structured (a type and a location per error), so the field path needs no parsing.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin

import pydantic
from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter

from revenge.http.errors import Problem
from revenge.http.request import Request
from revenge.http.response import JSON_CONTENT_TYPE, Response

NO_NUL = r"^[^\x00]*$"
"""The pattern every declared string carries: PostgreSQL text cannot hold NUL."""

_MAX_ERRORS = 10


def text(*, max_length: int, min_length: int = 1, pattern: str = NO_NUL) -> StringConstraints:
    """A bounded string without NUL: ``Annotated[str, text(max_length=100)]``.

    >>> from typing import Annotated
    >>> class Note(Input):
    ...     text: Annotated[str, text(max_length=5)]
    >>> Note.model_validate({"text": "a\\x00"})
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Note
    ...
    """
    return StringConstraints(min_length=min_length, max_length=max_length, pattern=pattern)


class Input(BaseModel):
    """Base of request models: frozen; unknown fields are ignored (clients may send more)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Output(BaseModel):
    """Base of response models (documentation, and :func:`model_response`)."""

    model_config = ConfigDict(frozen=True)


@dataclass(frozen=True, slots=True)
class Declared:
    """What a route declares; ``None`` for each part it does not have."""

    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    params: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    """The success status (201 created, 202 accepted, 204 no content)."""
    admin: bool = False
    """Administrators only: anyone else gets 403 before the input is even decoded."""
    problems: tuple[int, ...] = ()
    """Statuses of problems the handler answers to input its schema allows (a code
    not found, a rule the schema cannot say: 404, 409, 412, 422...): each is listed in
    the OpenAPI document, so a client (and the fuzzer) knows the route may answer it."""

    @property
    def decodes(self) -> bool:
        return self.body is not None or self.query is not None or self.params is not None

    def models(self) -> Iterator[type[BaseModel]]:
        for model in (self.body, self.query, self.params, self.response):
            if model is not None:
                yield model


NOTHING = Declared()
FORBIDDEN = Problem(
    403, "admin_required", "Administrator required", "only administrators may do this"
)

Handler = Callable[[Request], Awaitable[Response]]


def declare(handler: Callable[..., Awaitable[Response]], declared: Declared) -> Handler:
    """``handler`` wrapped to receive its declared inputs, decoded; as is without inputs.

    Checked here, at start-up, not per request: the handler accepts every declared
    keyword, and every string of an input model is bounded.
    """
    if not declared.decodes and not declared.admin:
        return handler
    signature = inspect.signature(handler)
    for name in ("body", "query", "params"):
        if getattr(declared, name) is not None and name not in signature.parameters:
            raise TypeError(f"{handler.__qualname__} declares {name}= but takes no {name!r}")
    for model in (declared.body, declared.query, declared.params):
        if model is not None:
            _check_strings(model)
    body = _body_decoder(declared.body) if declared.body is not None else None
    query = _query_decoder(declared.query) if declared.query is not None else None
    params = declared.params
    admin = declared.admin

    async def decoded(request: Request) -> Response:
        if admin and (request.principal is None or not request.principal.is_admin):
            raise FORBIDDEN
        kwargs: dict[str, Any] = {}
        if params is not None:
            kwargs["params"] = _validate(params, request.path_params, strict=False)
        if query is not None:
            kwargs["query"] = query(request.query)
        if body is not None:
            kwargs["body"] = await body(request)
        return await handler(request, **kwargs)

    decoded.__doc__ = handler.__doc__
    decoded.__qualname__ = handler.__qualname__
    return decoded


def model_response(
    model: BaseModel,
    status: int = 200,
    *,
    headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    """A declared response model as JSON (unset optional fields included, as ``null``).

    >>> class Out(Output):
    ...     id: int
    >>> model_response(Out(id=7)).body
    b'{"id":7}'
    """
    return Response(
        status,
        model.__pydantic_serializer__.to_json(model),
        [("content-type", JSON_CONTENT_TYPE), *headers],
    )


# -- decoding ------------------------------------------------------------------------------


def _body_decoder(model: type[BaseModel]) -> Callable[[Request], Awaitable[BaseModel]]:
    adapter = TypeAdapter(model)

    async def decode(request: Request) -> BaseModel:
        _require_json(request)
        raw = await request.body()
        try:
            # strict: JSON has its own types; "3" is not an integer in a body.
            result: BaseModel = adapter.validate_json(raw, strict=True)
        except pydantic.ValidationError as exc:
            raise _problem(exc) from None
        return result

    return decode


def _query_decoder(model: type[BaseModel]) -> Callable[[Mapping[str, list[str]]], BaseModel]:
    lists = frozenset(
        name for name, info in model.model_fields.items() if _is_sequence(info.annotation)
    )
    known = frozenset(model.model_fields)

    def decode(query: Mapping[str, list[str]]) -> BaseModel:
        values: dict[str, Any] = {}
        for name, given in query.items():
            if name not in known:
                continue  # unknown parameters are ignored, as unknown body fields are
            if name in lists:
                values[name] = given
            elif len(given) > 1:
                raise _invalid(name, "given more than once", "repeated")
            else:
                values[name] = given[0]
        return _validate(model, values, strict=False)

    return decode


def _validate(model: type[BaseModel], values: Mapping[str, Any], *, strict: bool) -> BaseModel:
    try:
        return model.model_validate(values, strict=strict)
    except pydantic.ValidationError as exc:
        raise _problem(exc) from None


def _require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            f"expected application/json, got {media_type or 'no content type'}",
        )


def _problem(exc: pydantic.ValidationError) -> Problem:
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    if errors and errors[0]["type"] == "json_invalid":
        raise Problem(400, "malformed_json", "Malformed JSON", errors[0]["msg"])
    listed = [
        {"field": _field(e["loc"]), "reason": e["type"], "message": e["msg"]}
        for e in errors[:_MAX_ERRORS]
    ]
    first = listed[0]
    where = f"{first['field']}: " if first["field"] else ""
    return Problem(
        422,
        "validation_failed",
        "Validation failed",
        f"{where}{first['message']}",
        extra={"field": first["field"], "errors": listed},
    )


def _invalid(field: str, message: str, reason: str) -> Problem:
    return Problem(
        422,
        "validation_failed",
        "Validation failed",
        f"{field}: {message}",
        extra={"field": field, "errors": [{"field": field, "reason": reason, "message": message}]},
    )


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _is_sequence(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return any(_is_sequence(arg) for arg in get_args(annotation) if arg is not type(None))


def _check_strings(model: type[BaseModel]) -> None:
    """Every string of an input is bounded (``maxLength``), or one of a few (enum, uuid...)."""
    schema = model.model_json_schema()
    for where, node in _schemas(schema, model.__name__):
        if node.get("type") != "string" or "enum" in node or "const" in node:
            continue
        if "format" in node or ("maxLength" in node and "pattern" in node):
            continue
        raise TypeError(
            f"{where}: a string input needs a bound and NUL refused: "
            "Annotated[str, text(max_length=...)]"
        )


def _schemas(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _schemas(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schemas(value, f"{where}[{index}]")
