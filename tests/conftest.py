"""Shared test configuration: the loopback Exchange peer's fixtures, for every test module."""

pytest_plugins = ["tests.exchange_peer.fixtures"]
