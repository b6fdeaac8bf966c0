"""Real loopback servers (HTTP receiver, forward proxy) and waiting helpers for the test-suite."""
