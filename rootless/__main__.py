"""Entry point for ``python3 -m rootless`` and for the zipapp."""

import sys

from rootless.cli import main

if __name__ == "__main__":
    sys.exit(main())
