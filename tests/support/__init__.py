"""Helpers shared by the tests: real peers (hosts, sshd, git clients), the CLI runner."""
