"""Built-in plugins: frames."""
