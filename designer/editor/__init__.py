"""Designing pipelines and projects: the models, the drag-and-drop editor, YAML in and out."""
