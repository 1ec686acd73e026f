"""The one exception hierarchy of rootless.

Library code raises these with a message that names the operation, the object and what
to do; only ``rootless.cli`` turns them into a one-line ``rootless: error: ...`` and an exit
code. The exit codes follow Docker's: 125 when rootless itself fails, 126 when the
container's command cannot be invoked, 127 when it cannot be found.
"""


class RootlessError(Exception):
    """Base class: a failure of the runner itself (Docker's exit code 125)."""

    exit_code = 125


class UsageError(RootlessError):
    """The command line or an option value is wrong."""


class NotFound(RootlessError):
    """A named image, container or file does not exist."""


class Conflict(RootlessError):
    """The operation would clash with existing state (a name in use, an image in use)."""


class InvalidImage(RootlessError):
    """An archive, manifest, config or layer is malformed, hostile or fails verification."""


class DigestMismatch(InvalidImage):
    """Content does not hash to the digest that names it."""


class SizeLimitExceeded(InvalidImage):
    """A layer unpacks to more than the configured limit (a decompression bomb guard)."""


class Unsupported(RootlessError):
    """The input uses a format or feature this build cannot handle."""


class StoreError(RootlessError):
    """The storage root cannot be used (permissions, locking, corruption)."""


class CannotInvoke(RootlessError):
    """The container's command exists but cannot be executed."""

    exit_code = 126


class CommandNotFound(RootlessError):
    """The container's command does not exist."""

    exit_code = 127
