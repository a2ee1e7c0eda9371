"""Built-in plugins: secrets."""
