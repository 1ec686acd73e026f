"""rootless: Docker's command line for one unprivileged user, without a daemon."""

__version__ = "0.1.0"
