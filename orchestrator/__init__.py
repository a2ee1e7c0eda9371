"""Pipedeck's engine: runs pipeline-flow YAML projects. Pure Python; never imports Django."""
