"""Where a run may connect: the egress policy applied to HTTP plugins and network database DSNs.

The CLI runs with ``EgressPolicy.open()`` (a single user's own network is theirs); the web app's runs get
a restrictive policy: loopback, private, link-local, multicast, unspecified and metadata addresses are
refused in every spelling unless the site allows them, and the app's own services are refused always.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EgressPolicy:
    """What a run may connect to. ``restricted=False`` allows everything (the CLI's default)."""

    restricted: bool = False

    @classmethod
    def open(cls) -> EgressPolicy:
        """No restriction: the CLI's policy."""
        return cls(restricted=False)
