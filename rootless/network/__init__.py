"""Container networking: published ports (``ports``), our own port forwarder (``forwarder``), the helpers."""
