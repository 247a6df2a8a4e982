"""The authmw demo API on Flask."""
