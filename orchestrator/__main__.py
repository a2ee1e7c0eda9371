"""``python -m orchestrator run project.yaml``: headless runs, same semantics as the web app."""

from __future__ import annotations

import sys

from orchestrator.cli import main

if __name__ == "__main__":
    sys.exit(main())
