"""The server's aggregation types, one module each (see :mod:`.base` for the seam)."""
