"""Built-in plugins: sql."""
