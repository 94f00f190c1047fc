"""HTTP: router, request/response, problem errors, and the RSGI/ASGI application."""

from revenge.http.application import Authenticator, HttpApp, Phase
from revenge.http.errors import Problem
from revenge.http.request import Principal, Request
from revenge.http.response import Response, empty_response, json_response
from revenge.http.router import Handler, Route, Router

__all__ = [
    "Authenticator",
    "Handler",
    "HttpApp",
    "Phase",
    "Principal",
    "Problem",
    "Request",
    "Response",
    "Route",
    "Router",
    "empty_response",
    "json_response",
]
