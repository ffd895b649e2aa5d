"""Shared test infrastructure: real servers on real loopback sockets (see servers.py)."""
