"""``python -m authmw``: the ``authmw`` command, for environments without the script on PATH."""

from authmw.cli import main

if __name__ == "__main__":
    main(prog_name="authmw")
