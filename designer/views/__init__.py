"""Function views, one module per resource."""
