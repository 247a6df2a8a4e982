"""authmw's tests, by layer (``core``, ``starlette``, ``e2e``)."""
