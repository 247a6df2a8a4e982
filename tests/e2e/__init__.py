"""End-to-end tests: the demo app over real HTTP, the CLI as a process."""
