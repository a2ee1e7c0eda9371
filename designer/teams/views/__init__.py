"""Team pages: settings (members, secrets, variables, limits), activity; the library."""
