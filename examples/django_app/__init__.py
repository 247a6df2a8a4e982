"""The authmw demo API on Django."""
