"""The cross-framework conformance suite: one scenario table, three demo apps, identical answers."""
