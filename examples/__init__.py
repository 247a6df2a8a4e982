"""The authmw demo API, written once per framework (served by ``authmw demo``)."""
