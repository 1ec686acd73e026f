"""Networking: published ports, the network helpers and our own port forwarder."""
