"""Container networking: published ports (``ports``), the port forwarder, the helpers."""
