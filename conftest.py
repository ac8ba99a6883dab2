"""Test-suite wide fixtures: real PostgreSQL, nats-server and Envoy from cvmatch.testing."""

pytest_plugins = ["cvmatch.testing.fixtures"]
