"""Why ssh refused a host, told from its own stderr — without scanning at fetch time.

ssh only verifies; it never tells which key the server presented when the host is unknown.
:func:`host_key_ssh_options` makes it tell: OpenSSH (8.5+) runs ``KnownHostsCommand`` while
checking the host key, with the presented key's type (``%t``) and SHA256 fingerprint (``%f``)
as arguments. Ours is ``/bin/sh`` printing one line to *stderr* and nothing to stdout — stdout
is read as known_hosts lines, so nothing is ever added to what is trusted::

    repolink-host-key: [git.example.com]:2222 ssh-ed25519 SHA256:…

That line travels with ssh's (and git's) stderr, survives :func:`repolink.git.keyfiles.scrub` (a
fingerprint is too short to look like key material), and :func:`diagnose_ssh_stderr` reads it
back to name the presented fingerprint in ``host_key_unknown`` / ``host_key_changed``. When the
line is missing (options not used), ssh's own "REMOTE HOST IDENTIFICATION HAS CHANGED" text is
read instead, and an unknown host is reported without a fingerprint.
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass

from repolink.errors import GitError, RepolinkError
from repolink.knownhosts.hostport import display_name, known_hosts_name, normalize_host
from repolink.knownhosts.values import TrustedHostKey

log = logging.getLogger(__name__)

MARKER = "repolink-host-key:"
# Run by ssh without a shell (its own argv splitting, then %-token expansion per argument):
# no '%' in the script, the server-controlled values only ever as positional arguments.
_REPORTER = (
    '/bin/sh -c "[ \\"$1\\" = HOSTNAME ] && echo \\"' + MARKER + ' $0 $2 $3\\" >&2; exit 0"'
    " %H %I %t %f"
)
_MARKER_LINE = re.compile(
    rf"^{re.escape(MARKER)} (?P<name>\S+) (?P<type>\S+) (?P<fp>SHA256:[A-Za-z0-9+/]{{43}})\s*$",
    re.MULTILINE,
)
_CHANGED_FINGERPRINT = re.compile(
    r"The fingerprint for the (?P<type>\S+) key sent by the remote host is\s*"
    r"(?P<fp>SHA256:[A-Za-z0-9+/]{43})"
)
_VERIFICATION_FAILED = (
    "Host key verification failed",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "you have requested strict checking",
)


@dataclass(frozen=True)
class PresentedHostKey:
    """The host key a server presented to ssh, as ssh reported it."""

    known_hosts_name: str
    key_type: str
    fingerprint: str


def host_key_ssh_options() -> list[str]:
    """ssh arguments that make ssh report the presented host key on stderr.

    Add them to :func:`repolink.git.environment.ssh_command`'s argv (which already holds
    ``StrictHostKeyChecking=yes``, ``UserKnownHostsFile=<the run's file>`` and
    ``GlobalKnownHostsFile=/dev/null``); they change nothing about what is trusted.
    """
    return ["-o", f"KnownHostsCommand={_REPORTER}"]


def presented_host_keys(stderr: str) -> list[PresentedHostKey]:
    """Every host key ssh reported through :func:`host_key_ssh_options`, in order."""
    return [
        PresentedHostKey(match["name"], match["type"], match["fp"])
        for match in _MARKER_LINE.finditer(stderr)
    ]


def diagnose_ssh_stderr(
    stderr: str, *, host: str, port: int, trusted: list[TrustedHostKey]
) -> RepolinkError | None:
    """``host_key_unknown`` or ``host_key_changed`` when ssh refused the host key of
    ``host:port``, else ``None``. ``trusted`` is what the run's known_hosts file held for it
    (:func:`repolink.knownhosts.trusted_keys`); ``stderr`` may be raw or scrubbed."""
    if not any(text in stderr for text in _VERIFICATION_FAILED):
        return None
    host = normalize_host(host)
    name = display_name(host, port)
    mine = [key for key in trusted if (key.host, key.port) == (host, port)]
    presented = _presented(stderr, known_hosts_name(host, port))
    if not mine:
        return _unknown(name, presented)
    if presented is not None and presented.fingerprint in {key.fingerprint for key in mine}:
        return GitError(
            "host_key_verification_failed",
            f"ssh refused the host key of {name} although {presented.fingerprint} is trusted",
            "the run's known_hosts file did not hold the trusted keys; build it with "
            "repolink.knownhosts.known_hosts_text (this is a bug in the caller)",
        )
    return _changed(name, mine, presented)


def _presented(stderr: str, hostfile_name: str) -> PresentedHostKey | None:
    reported = presented_host_keys(stderr)
    for key in reversed(reported):
        if key.known_hosts_name == hostfile_name:
            return key
    if len(reported) == 1:
        return reported[0]
    changed = _CHANGED_FINGERPRINT.search(stderr)
    if changed is not None:
        return PresentedHostKey(hostfile_name, changed["type"], changed["fp"])
    return None


def _unknown(name: str, presented: PresentedHostKey | None) -> GitError:
    if presented is None:
        return GitError(
            "host_key_unknown",
            f"the SSH host key of {name} is not trusted (ssh did not report its fingerprint)",
            f"scan the host keys of {name}, check the fingerprint with the server's admin, then "
            "trust that key",
            reason="unreported",
            context={"host": shlex.quote(name)},
        )
    return GitError(
        "host_key_unknown",
        f"the SSH host key of {name} is not trusted; the server presents "
        f"{presented.key_type} {presented.fingerprint}",
        "check that fingerprint with the server's admin (never from this connection), then "
        f"trust it for {name}",
        context={"host": shlex.quote(name), "fingerprint": presented.fingerprint},
    )


def _changed(name: str, mine: list[TrustedHostKey], presented: PresentedHostKey | None) -> GitError:
    trusted_text = ", ".join(f"{key.key_type} {key.fingerprint}" for key in mine)
    shown = f"{presented.key_type} {presented.fingerprint}" if presented else "another key"
    new_fingerprint = presented.fingerprint if presented else "SHA256:…"
    shipped = any(key.shipped for key in mine)
    if shipped:
        replace = (
            "trust the new key in place of the shipped ones once the service's own "
            "documentation lists that fingerprint"
        )
    else:
        replace = "remove the old key and trust the new one"
    return GitError(
        "host_key_changed",
        f"the SSH host key of {name} has changed: trusted {trusted_text}; the server presents "
        f"{shown}",
        "this may be an attack: do not connect until the host's admin confirms the new key; "
        f"then {replace}",
        reason="shipped" if shipped else None,
        context={"host": shlex.quote(name), "fingerprint": new_fingerprint},
    )
