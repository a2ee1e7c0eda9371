"""The run's side of a child process: read the request, shed everything the run was not given, run the
project and stream its events back to the worker; end at once when the run is over or the worker is gone.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.control import RunControl
from orchestrator.egress import EgressPolicy
from orchestrator.events import Event, RunFinished, RunStarted, Status, StepStarted
from orchestrator.outputs import KeepOutputs, StepOutput
from orchestrator.preview import PreviewRefused, preview_project
from orchestrator.resolve import ResolveError, SecretResolver, secret_key
from orchestrator.resume import ResumeFrom, ResumeRefused
from orchestrator.sandbox.protocol import encode, read_frame, read_frame_blocking
from orchestrator.sandbox.request import RunRequest
from orchestrator.scheduler import run_project
from orchestrator.spec import ProjectSpec

#: the only environment a run's process has, besides the names the site allows
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
#: exit codes of a child that could not run
EXIT_NO_REQUEST, EXIT_WORKER_GONE = 65, 66


def serve(sock: socket.socket) -> int:
    """Run the one request that arrives on ``sock``; returns the exit code."""
    message = read_frame_blocking(sock)
    if message is None:
        return EXIT_NO_REQUEST
    request = RunRequest.from_dict(message)
    confine(request)
    return asyncio.run(_run(sock, request))


def confine(request: RunRequest) -> None:
    """The process keeps only what the run was given: its limits, its data root, its environment."""
    request.limits.apply()
    root = Path(request.data_root)
    os.chdir(root)
    os.umask(0o077)
    tmp = root / ".tmp"
    tmp.mkdir(exist_ok=True)
    os.environ.clear()
    os.environ.update(
        {
            **request.env,
            **BASE_ENV,
            "HOME": str(root),
            "TMPDIR": str(tmp),
            # read by Polars when its thread pool starts, i.e. at the run's first frame operation
            "POLARS_MAX_THREADS": str(request.limits.threads),
        }
    )


def _secret_resolver(request: RunRequest) -> SecretResolver:
    def resolve(name: str, key_path: str | None) -> str:
        if name not in request.secrets:
            raise ResolveError(request.missing_secret.replace("{name}", name))
        return secret_key(name, request.secrets[name], key_path)

    return resolve


class Outbox:
    """The run's event sink: events of one turn of the loop leave together, in one frame; a step's start
    leaves at once, before the step's code runs, so a crash in it is seen as that step's."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append(event.to_dict())
        if isinstance(event, StepStarted):
            self.flush()

    def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self.writer.write(encode({"events": batch}))

    def output(self, summary: StepOutput) -> None:
        """A step's output summary: its own frame, beside the events (the worker stores it with the run)."""
        self.writer.write(encode({"outputs": [summary.to_dict()]}))


async def _listen(reader: asyncio.StreamReader, control: RunControl) -> None:
    """Cancel requests from the worker; the end of the stream means the worker is gone."""
    while True:
        message = await read_frame(reader)
        if message is None:
            os._exit(EXIT_WORKER_GONE)  # nobody records this run any more: stop it here and now
        if "cancel" in message:
            pipeline = message["cancel"]
            if pipeline is None:
                control.cancel()
            else:
                control.cancel_pipeline(str(pipeline))


def inside(root: Path, relative: str) -> Path:
    """``relative`` under the data root; ResumeRefused when it leaves it."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ResumeRefused(f"{relative} is outside the data root")
    return path


def _options(request: RunRequest, outbox: Outbox) -> dict[str, Any]:
    """``run_project``'s keyword options for what the request asks beyond running: kept outputs, a
    resume, a preview (its spec cut after the step it shows, and its row limit)."""
    root = Path(request.data_root)
    options: dict[str, Any] = {}
    if request.preview:
        preview = request.preview
        options["project"] = preview_project(request.spec, str(preview["pipeline"]), str(preview["step"]))
        options["row_limit"] = int(preview.get("row_limit") or 1000)
        options["only"] = [str(preview["pipeline"])]
    else:
        options["project"] = ProjectSpec.model_validate(request.spec)
    if request.outputs is not None:
        given = dict(request.outputs)
        directory = given.pop("directory", None)
        options["outputs"] = KeepOutputs(
            directory=inside(root, directory) if directory and not request.preview else None,
            on_output=outbox.output,
            **{k: v for k, v in given.items() if k in KeepOutputs.__dataclass_fields__},
        )
    if request.resume:
        steps = request.resume.get("steps")
        options["resume"] = ResumeFrom(inside(root, str(request.resume["directory"])), steps)
    return options


async def _run(sock: socket.socket, request: RunRequest) -> int:
    reader, writer = await asyncio.open_connection(sock=sock)
    control = RunControl()
    outbox = Outbox(writer)
    listener = asyncio.create_task(_listen(reader, control))
    try:
        try:
            options = _options(request, outbox)
            only = options.pop("only", request.only)
            await run_project(
                sinks=[outbox],
                only=only,
                env=request.env,
                secrets=_secret_resolver(request),
                data_root=Path(request.data_root),
                control=control,
                network=EgressPolicy.from_dict(request.network) if request.network else EgressPolicy.open(),
                **options,
            )
        except (ResumeRefused, PreviewRefused, ValidationError) as exc:
            outbox(RunStarted(pipelines=list(request.only or [])))
            outbox(RunFinished(status=Status.FAILED, duration=0.0, error=_refusal(exc)))
    finally:
        listener.cancel()
        outbox.flush()
        await writer.drain()
        writer.close()
    return 0


def _refusal(exc: Exception) -> str:
    """Why the run could not start, as a user reads it."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"the preview cannot run: {where}: {first['msg']}" if where else first["msg"]
    return str(exc)
