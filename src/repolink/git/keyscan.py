"""Asking a server which host keys it has — with OpenSSH's own ``ssh-keyscan``.

Why ``ssh-keyscan`` rather than asyncssh: it is the same implementation as the ``ssh`` that later
verifies the key, so what it reports is exactly what ssh will be shown, for every key type ssh
supports; it collects all types in one run; and it is one more process under a
:class:`repolink.git.runner.GitRunner` (hardened environment, no config files, wall-clock limit),
like every other ssh process repolink starts. Its weakness — it says nothing useful when it gets no
key — is covered by a plain TCP probe afterwards that names the cause (DNS, refused, timeout).

It lives in ``git/`` because it starts a process; :mod:`repolink.knownhosts` keeps the trust store
and asks for a :data:`~repolink.knownhosts.values.Scanner` where it needs one.

A scan trusts nothing. Only :func:`repolink.knownhosts.trust` stores a key, and only the one
whose fingerprint the caller checked out of band. Fetches never scan.
"""

from __future__ import annotations

import functools
import logging
import socket
import tempfile
from pathlib import Path

from repolink.errors import GitError, RepolinkError
from repolink.git.environment import hardened_env
from repolink.git.runner import GitRunner
from repolink.knownhosts.hostport import check_port, display_name, normalize_host
from repolink.knownhosts.values import ScannedHostKey, Scanner, host_key_from_line
from repolink.settings import Settings

log = logging.getLogger(__name__)

SCAN_CONNECT_TIMEOUT = 10
# Host key types a server can present to OpenSSH 8.5+ (dsa is refused by ssh anyway).
SCAN_KEY_TYPES = "rsa,ecdsa,ed25519"


def scan(
    host: str,
    port: int = 22,
    *,
    runner: GitRunner,
    connect_timeout: int = SCAN_CONNECT_TIMEOUT,
) -> list[ScannedHostKey]:
    """The host keys ``host:port`` presents, one per key type, with SHA256 fingerprints.

    Raises :class:`GitError` ``dns_failed``, ``connection_refused``, ``timeout``,
    ``connection_failed`` or ``host_key_scan_failed`` (reachable, but no SSH host key came
    back), and :class:`~repolink.errors.ValidationError` for a bad host or port.
    """
    host = normalize_host(host)
    port = check_port(port)
    if isinstance(connect_timeout, bool) or connect_timeout <= 0:
        raise ValueError(f"connect_timeout must be a positive number of seconds: {connect_timeout}")
    argv = ["ssh-keyscan", "-T", str(connect_timeout), "-p", str(port), "-t", SCAN_KEY_TYPES]
    argv += ["--", host]
    with tempfile.TemporaryDirectory(prefix="repolink-scan-") as home:
        result = runner.run(
            argv,
            env=hardened_env(Path(home)),
            timeout=3 * connect_timeout + 5,
        )
    keys = _parse_keyscan(result.stdout.decode("utf-8", "replace"), host, port)
    if keys:
        log.info("scanned %s: %s", display_name(host, port), [key.fingerprint for key in keys])
        return keys
    if result.timed_out:
        raise _timeout(host, port)
    raise _why_no_keys(host, port, result.stderr, connect_timeout)


def scanner_for(settings: Settings, runner: GitRunner) -> Scanner:
    """:func:`scan` through ``runner`` with the configured ssh connect timeout: what ``trust``
    is given."""
    return functools.partial(scan, runner=runner, connect_timeout=settings.ssh_connect_timeout)


def _parse_keyscan(output: str, host: str, port: int) -> list[ScannedHostKey]:
    keys: dict[str, ScannedHostKey] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 3 or line.startswith("#"):
            continue
        try:
            key = host_key_from_line(" ".join(fields[1:3]))
        except RepolinkError as exc:
            # A key ssh would not accept either (say, RSA under 2048 bits): not offered.
            log.warning("%s presented an unusable %s key: %s", host, fields[1], exc.code)
            continue
        keys.setdefault(key.sha256_fingerprint, ScannedHostKey(host, port, key))
    return list(keys.values())


def _why_no_keys(host: str, port: int, stderr: str, connect_timeout: int) -> RepolinkError:
    name = display_name(host, port)
    if "getaddrinfo" in stderr or "Name or service not known" in stderr:
        return _dns_failed(host)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return _dns_failed(host)
    try:
        with socket.create_connection((host, port), timeout=connect_timeout):
            pass
    except ConnectionRefusedError:
        return GitError(
            "connection_refused",
            f"nothing accepts connections on {name}",
            "check the host and the port; is the SSH server running?",
        )
    except TimeoutError:
        return _timeout(host, port)
    except OSError as exc:
        return GitError(
            "connection_failed",
            f"cannot connect to {name}: {exc.strerror or type(exc).__name__}",
            "check the host, the port and the network between here and there",
        )
    return GitError(
        "host_key_scan_failed",
        f"{name} accepts connections but presented no SSH host key",
        "check that this host and port are an SSH server (not HTTPS or something else)",
    )


def _dns_failed(host: str) -> GitError:
    return GitError(
        "dns_failed",
        f"the host name {host} cannot be resolved",
        "check the spelling of the host, and this machine's DNS",
    )


def _timeout(host: str, port: int) -> GitError:
    return GitError(
        "timeout",
        f"{display_name(host, port)} did not answer in time",
        "check that the host is reachable from here (firewall, VPN), or raise "
        "REPOLINK_SSH_CONNECT_TIMEOUT",
    )
