"""The example module: the whole contract in one small folder (docs/architecture.md).

Wired by one line, and not in the shipped list: the tests name it in
``modules.extra`` (``REVENGE_MODULES__EXTRA='["tests.example_module"]'``), as an
operator would a third-party module. It adds

* a route ``GET /api/v1/example`` (the warm service's greeting and the cold
  service's state) and ``POST /api/v1/example/notes`` (queues a job);
* a warm service ``example.greeter`` (built at start: it counts the notes);
* a cold service ``example.scribe`` (built on first use, offloaded when idle);
* a job kind ``example_note`` whose body writes a note with both services;
* a migration ``migrations/0001_example.sql`` (the ``example_notes`` table).
"""

from __future__ import annotations

import os
from importlib import resources
from typing import Annotated

from revenge.contract import (
    DATABASE,
    JOBS,
    JobContext,
    JobKind,
    Module,
    ModuleContext,
    Payload,
    RetryPolicy,
    ServiceKey,
    Tier,
)
from revenge.http import Input, Output, Request, Response, model_response, text
from revenge.infra.db import Database


class Greeter:
    """Warm: opened at start (it reads the table its migration made)."""

    def __init__(self, db: Database, notes_at_start: int) -> None:
        self.db = db
        self.notes_at_start = notes_at_start

    async def count(self) -> int:
        row = await self.db.fetch_one("SELECT count(*) FROM example_notes")
        return int(row[0]) if row else 0


class Scribe:
    """Cold: built on first use; records which process built it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.closed = False

    def sign(self) -> str:
        return f"scribe@{self.pid}"

    def close(self) -> None:
        self.closed = True


class NoteBody(Input):
    text: Annotated[str, text(max_length=200)]


class Greeting(Output):
    hello: str
    notes: int
    scribe_built: bool


class Queued(Output):
    job_id: int


GREETER: ServiceKey[Greeter] = ServiceKey("example.greeter", Tier.WARM)
SCRIBE: ServiceKey[Scribe] = ServiceKey("example.scribe", Tier.COLD)
EXAMPLE_NOTE = JobKind("example_note", queue="example", retry=RetryPolicy(max_attempts=2))


def install(ctx: ModuleContext) -> None:
    services = ctx.services

    async def open_greeter() -> Greeter:
        db = services.get(DATABASE)
        return Greeter(db, await Greeter(db, 0).count())

    ctx.provide(GREETER, open_greeter)
    ctx.provide(SCRIBE, Scribe, close=Scribe.close)

    async def show(request: Request) -> Response:
        """The example's greeting: notes so far, and whether its cold service is built."""
        greeter = services.get(GREETER)
        return model_response(
            Greeting(
                hello=request.principal_or_raise.username,
                notes=await greeter.count(),
                scribe_built=services.lazy(SCRIBE).initialized,
            )
        )

    async def add_note(request: Request, *, body: NoteBody) -> Response:
        """Queue a note; the ``example_note`` job writes it."""
        job_id = await services.get(JOBS).enqueue(EXAMPLE_NOTE.name, {"text": body.text})
        return model_response(Queued(job_id=job_id), 202)

    ctx.route("GET", "/api/v1/example", show, response=Greeting)
    ctx.route("POST", "/api/v1/example/notes", add_note, body=NoteBody, response=Queued, status=202)
    ctx.job(EXAMPLE_NOTE, write_note)
    ctx.migrations(resources.files(__name__) / "migrations")


async def write_note(ctx: JobContext, payload: Payload) -> None:
    """Uses the warm service's pool and builds the cold one, wherever jobs run."""
    greeter = ctx.services.get(GREETER)
    scribe = await ctx.services.lazy(SCRIBE).get()
    await greeter.db.execute(
        "INSERT INTO example_notes (text, written_by) VALUES (%s, %s)",
        (payload["text"], scribe.sign()),
    )
    await ctx.progress(1, 1, "written")


MODULE = Module("example", install)
