"""The ``authmw`` management command."""
