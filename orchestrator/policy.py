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
    connect; ``data_root``: the folder their file paths resolve in, when known (None: paths are checked
    for '..' only); ``parse_sql``: parse SQL expressions and queries with Polars' own parser, as the steps
    will (it imports Polars: the web app's editor does, a quick ``validate`` on the command line does not)."""

    env_allowed: Collection[str] | None = None
    network: EgressPolicy = field(default_factory=EgressPolicy.open)
    data_root: str | None = None
    parse_sql: bool = False
