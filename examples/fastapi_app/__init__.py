"""The authmw demo API on FastAPI."""
