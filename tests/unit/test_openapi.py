"""The OpenAPI document describes exactly the app's routes, and its body schemas tell the truth.

A route missing from the document would never be fuzzed; a body the document calls valid
but the code refuses (or the other way round) would mislead every client generated from it.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import BaseModel
from schemathesis import GenerationMode
from starlette.routing import Route

from risingtide.api import models
from risingtide.api.app import create_app
from risingtide.api.openapi import openapi_document
from risingtide.clock import FakeClock

BODIES: dict[str, type[BaseModel]] = {
    "/api/v1/lines/{line}/ack": models.AckBody,
    "/api/v1/lines/{line}/silence": models.SilenceBody,
    "/api/v1/lines/{line}/override": models.OverrideBody,
    "/api/v1/outbox/{key}/retry": models.OutboxNoteBody,
    "/api/v1/outbox/{key}/dismiss": models.OutboxNoteBody,
}


def test_every_route_and_method_is_documented_and_nothing_else() -> None:
    """The document's (path, method) pairs are the app's, one for one."""
    stub = SimpleNamespace(clock=FakeClock())  # routes only; never served
    app = create_app(stub)  # type: ignore[arg-type]
    served = {
        # {key:path} in the app is {key} in the document (a convertor is not OpenAPI's)
        (re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), method.lower())
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    doc = openapi_document()
    documented = {
        (path, method) for path, item in doc["paths"].items() for method in item
        if method != "parameters"
    }  # fmt: skip
    assert doc["openapi"] == "3.1.0"
    assert served == documented


def test_every_body_the_document_allows_is_accepted() -> None:
    """Bodies generated from each request schema parse with the model the handler uses."""
    schema = schemathesis.openapi.from_dict(openapi_document())
    refused: dict[str, Any] = {}

    def check(operation: schemathesis.APIOperation, model: type[Any]) -> None:
        @settings(max_examples=60, deadline=None, database=None, derandomize=True,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        def parses(case: schemathesis.Case) -> None:
            body = case.body if isinstance(case.body, dict) else {}  # no body: as if {}
            try:
                models.parse_body(model, json.dumps(body).encode())
            except models.BodyError as exc:
                refused[str(exc)] = body

        parses()

    for result in schema.get_all_operations():
        operation = result.ok()
        model = BODIES.get(operation.path)
        if model is not None and operation.method.upper() == "POST":
            check(operation, model)
    assert refused == {}
