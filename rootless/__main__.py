"""Entry point for ``python3 -m rootless`` and for the zipapp."""

from rootless.cli import exit_now, main

if __name__ == "__main__":
    exit_now(main())
