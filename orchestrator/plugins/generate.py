"""Built-in plugins: generate."""
