"""Tests of the framework-neutral core: one module per core module."""
