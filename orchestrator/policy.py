"""What the runs of a site may use, known before they run: validation reports a step that would break it.

The CLI's default allows everything (the user's own environment and network); the web app passes the
site's rules, so the editor shows at design time what a run would refuse.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from orchestrator.egress import EgressPolicy


@dataclass(frozen=True)
class RunPolicy:
    """``env_allowed``: the ``${{ env.X }}`` names runs may read (None: any); ``network``: where they may
    connect."""

    env_allowed: Collection[str] | None = None
    network: EgressPolicy = field(default_factory=EgressPolicy.open)
