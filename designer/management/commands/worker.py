"""``manage.py worker``: the background loop on its own, for scale-out (any number, on any machine)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from designer.runs.worker import Worker


class Command(BaseCommand):
    help = "Execute queued runs until SIGTERM/SIGINT (held runs are finished or re-queued on shutdown)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, default=None, help="Runs executed at once (default 4)")
        parser.add_argument(
            "--lease", type=float, default=None, help="Seconds a run stays ours without a heartbeat"
        )
        parser.add_argument(
            "--poll", type=float, default=None, help="Seconds between looks at the queue when idle"
        )
        parser.add_argument(
            "--grace", type=float, default=10.0, help="Seconds to finish held runs on shutdown"
        )
        parser.add_argument(
            "--id", dest="worker_id", default=None, help="Worker id (default host:pid:random)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        worker = Worker(
            worker_id=options["worker_id"],
            concurrency=options["concurrency"],
            lease=options["lease"],
            poll=options["poll"],
            grace=options["grace"],
        )
        asyncio.run(self._serve(worker))
        finished = ", ".join(f"{n} {state}" for state, n in sorted(worker.stats.finished.items())) or "none"
        self.stdout.write(
            f"worker {worker.worker_id} stopped: {worker.stats.claimed} claimed, finished: {finished}"
        )

    async def _serve(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        self.stdout.write(f"worker {worker.worker_id} started (concurrency {worker.concurrency})")
        self.stdout.flush()
        await worker.run()
