"""Domain logic of the designer, out of the views: edit, validate, version, import, export pipelines."""
