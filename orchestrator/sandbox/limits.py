"""Resource limits of a run's process: CPU seconds, address space, open files, threads, wall time."""

from __future__ import annotations

import resource
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """What one run may use. ``wall_seconds`` is enforced by the worker, the others by the kernel."""

    cpu_seconds: int = 3600
    memory_mib: int = 4096
    open_files: int = 256
    #: Polars' thread pool size in the run
    threads: int = 4
    wall_seconds: int = 6 * 3600

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})

    def apply(self) -> None:
        """Set the kernel limits of the calling process (a run's child, before it runs anything)."""
        # SIGXCPU at the soft limit ends the process; the hard limit (SIGKILL) is a backstop.
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))
        memory = self.memory_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def memory_limit_mib() -> int | None:
    """This process's address-space limit in MiB, None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft // (1024 * 1024)
