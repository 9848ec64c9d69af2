"""The HTTP API: one module per resource, the error table and the dependencies they share."""
