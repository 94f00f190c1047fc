"""HTTP: router, request/response (whole, file, stream), problem errors, the RSGI/ASGI application."""

from revenge.http.application import Authenticate, HttpApp, Lifecycle
from revenge.http.declare import NO_NUL, Input, Output, model_response, text
from revenge.http.errors import Problem
from revenge.http.files import file_response
from revenge.http.request import Principal, Request
from revenge.http.response import (
    FileResponse,
    Response,
    StreamResponse,
    empty_response,
    json_response,
)
from revenge.http.router import Handler, Route, Router

__all__ = [
    "NO_NUL",
    "Authenticate",
    "FileResponse",
    "Handler",
    "HttpApp",
    "Input",
    "Lifecycle",
    "Output",
    "Principal",
    "Problem",
    "Request",
    "Response",
    "Route",
    "Router",
    "StreamResponse",
    "empty_response",
    "file_response",
    "json_response",
    "model_response",
    "text",
]
