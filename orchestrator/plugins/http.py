"""Built-in plugins: http."""
