"""The editor's pages: the editor itself, a pipeline's versions, projects."""
