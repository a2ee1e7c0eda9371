"""Runs in child processes: each run of the web app executes in its own process, forked from a fork server
that has the engine and its plugins already imported, with a scrubbed environment, the team's data root
as working directory and resource limits. The worker talks to it over a socket (``launcher``); the child
side is ``child``, the fork server ``zygote``.
"""

from orchestrator.sandbox.launcher import ChildExit, Sandbox
from orchestrator.sandbox.limits import Limits
from orchestrator.sandbox.request import RunRequest

__all__ = ["ChildExit", "Limits", "RunRequest", "Sandbox"]
