"""Tests of the Starlette/FastAPI plugin and the ASGI middleware, on real apps in-process."""
