"""Built-in plugins: files."""
