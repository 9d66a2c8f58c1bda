"""Why a fetch failed, as exactly one error code with a fix (the seeds' troubleshooting list).

Codes, in the order they are checked:

- ``timeout`` — the wall-clock limit stopped git, or ssh timed out connecting;
- ``host_key_unknown`` / ``host_key_changed`` — from
  :func:`repolink.knownhosts.diagnose_ssh_stderr`;
- ``dns_failed``, ``connection_refused`` — ssh could not reach the server;
- ``invalid_private_key`` — ssh could not load the deploy key;
- ``auth_failed`` — the server refused the deploy key: the message names its SHA256
  fingerprint and the hint gives the public key line to add as a read-only access key;
- ``repo_not_found`` — wrong path, or the key is known but not on this repository (the
  forges' words, and gitolite's ``DENIED by fallthru``);
- ``invalid_object`` — fsck refused an object the server sent (the fetch checks every one);
- ``git_failed`` — anything else, with the first meaningful line of the scrubbed stderr.

``invalid_url`` and ``invalid_private_key`` also come from bad input before any process runs
(:func:`invalid_url`, :func:`invalid_private_key`). git's stderr is always passed through
:func:`repolink.git.keyfiles.scrub` (temp paths replaced, key-looking lines dropped) before any
of it reaches a message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from repolink.errors import (
    FetchError,
    InvalidPrivateKey,
    InvalidURL,
    KeyFormatError,
    RepolinkError,
    URLError,
)
from repolink.git.keyfiles import scrub
from repolink.git.runner import CompletedRun
from repolink.keys import PublicKey
from repolink.knownhosts import TrustedHostKey, diagnose_ssh_stderr, display_name
from repolink.knownhosts.diagnosis import MARKER
from repolink.urls import SSHURL

log = logging.getLogger(__name__)

FETCH_ERROR_CODES = (
    "auth_failed",
    "repo_not_found",
    "host_key_unknown",
    "host_key_changed",
    "dns_failed",
    "connection_refused",
    "timeout",
    "invalid_url",
    "invalid_private_key",
    "invalid_object",
    "git_failed",
)

# Where the common Git hosts keep a repository's read-only keys; an adapter adds its own way
# to reach the built-in host (the CLI names the command).
HOSTED_ACCESS_KEY_PLACES = (
    "Bitbucket: Repository settings → Access keys; GitHub: Settings → Deploy keys; "
    "GitLab: Settings → Repository → Deploy keys"
)
ACCESS_KEY_PLACES = (
    f"{HOSTED_ACCESS_KEY_PLACES}; repolink's built-in host: an access key of WORKSPACE/SLUG"
)

_DNS = (
    "Could not resolve hostname",
    "Name or service not known",
    "Temporary failure in name resolution",
    "nodename nor servname provided",
    "No address associated with hostname",
)
_REFUSED = ("Connection refused",)
_UNREACHABLE = ("No route to host", "Network is unreachable", "Connection reset by peer")
_TIMED_OUT = ("Connection timed out", "Operation timed out", "timed out during banner exchange")
_BAD_KEY = ("Load key", "invalid format", "error in libcrypto", "bad permissions")
_AUTH = ("Permission denied (publickey", "Permission denied, please try again")
_REPO_MISSING = re.compile(
    r"repository .{0,200}not found"
    r"|repository not found"
    r"|does not appear to be a git repository"
    r"|project you were looking for could not be found"
    r"|repository does not exist"
    r"|no such repository"
    r"|repository access denied"
    r"|deploy(?:ment)? key is not associated"
    r"|a repository path looks like"
    # gitolite: "FATAL: R any proj user DENIED by fallthru (or you mis-spelled the reponame)",
    # the same answer for a missing repository and one the key may not read.
    r"|\bDENIED by fallthru"
    r"|mis-?spelled the reponame",
    re.IGNORECASE,
)
_BOILERPLATE = (
    "Could not read from remote repository",
    "Please make sure you have the correct access rights",
    "and the repository exists.",
)
# fsck's refusal of a received object: "error: object <id>: badTimezone: …", then
# "fatal: fsck error in packed object" (index-pack) or "… in pack objects" (unpack-objects).
_FSCK_OBJECT = re.compile(r"^error: object [0-9a-f]{40,64}: \w+: .*$", re.MULTILINE)
_FSCK_FAILED = ("fsck error in pack", "fsck error in packed object")
# git's own words when the remote went away: true, but they say nothing the remote did not.
_HUNG_UP = ("the remote end hung up unexpectedly", "early EOF", "unexpected disconnect")
_FAILURE_PREFIX = re.compile(r"(?:remote:\s*)?(?:fatal|error):", re.IGNORECASE)


def invalid_url(error: URLError) -> InvalidURL:
    """The URL refusal as ``invalid_url``, keeping its message, fix and precise code."""
    if isinstance(error, InvalidURL):
        return error
    return InvalidURL(error.code, error.message, error.hint)


def invalid_private_key(error: KeyFormatError) -> InvalidPrivateKey:
    """The key refusal as ``invalid_private_key``, keeping its message, fix and precise code.

    Key errors never carry the key itself (see :mod:`repolink.keys`), so nothing is lost.
    """
    if isinstance(error, InvalidPrivateKey):
        return error
    return InvalidPrivateKey(error.code, error.message, error.hint)


def diagnose(
    run: CompletedRun,
    *,
    what: str,
    url: SSHURL,
    public_key: PublicKey,
    trusted: list[TrustedHostKey],
    secrets_paths: Iterable[Path],
) -> RepolinkError:
    """The one error that says why ``run`` (a git process talking to ``url``) failed."""
    host, port = url.host_port
    name = display_name(host, port)
    stderr = scrub(run.stderr, secrets_paths=secrets_paths)
    if run.timed_out:
        return FetchError(
            "timeout",
            f"{what} from {name} did not finish within {run.duration:.0f} s and was stopped",
            "check that the server is reachable and responsive, or raise REPOLINK_GIT_TIMEOUT",
        )
    host_key_error = diagnose_ssh_stderr(stderr, host=host, port=port, trusted=trusted)
    if host_key_error is not None:
        code = host_key_error.code if host_key_error.code in FETCH_ERROR_CODES else "git_failed"
        return host_key_error.recast(FetchError, code=code)
    if _has(stderr, _DNS):
        return FetchError(
            "dns_failed",
            f"the host name {host} cannot be resolved",
            "check the host in the URL for typos, and this machine's DNS",
        )
    if _has(stderr, _REFUSED):
        return FetchError(
            "connection_refused",
            f"nothing accepts SSH connections on {name}",
            "check the host and the port in the URL (ssh://git@host:PORT/path for a port "
            "other than 22), and that the SSH server is running",
        )
    if _has(stderr, _TIMED_OUT):
        return FetchError(
            "timeout",
            f"{name} did not answer in time",
            "check that the host is reachable from here (firewall, VPN), or raise "
            "REPOLINK_SSH_CONNECT_TIMEOUT",
        )
    if _has(stderr, _UNREACHABLE):
        return FetchError(
            "connection_refused",
            f"cannot reach {name}: {_first_matching(stderr, _UNREACHABLE)}",
            "check the host and the port in the URL, and the network between here and there",
        )
    if _has(stderr, _BAD_KEY) and not _has(stderr, _AUTH):
        return FetchError(
            "invalid_private_key",
            f"ssh could not use the deploy key {public_key.sha256_fingerprint}",
            "import the private key again, or generate a new deploy key",
            reason="ssh_refused_key",
        )
    if _has(stderr, _AUTH):
        return FetchError(
            "auth_failed",
            f"{name} refused the deploy key ({public_key.key_type} "
            f"{public_key.sha256_fingerprint})",
            f"add this public key as a read-only access key on the repository "
            f"({ACCESS_KEY_PLACES}), then fetch again: "
            f"{public_key.openssh_line(with_comment=False)}",
            # Where the key must go: an adapter can name the exact command for a repository
            # of its own built-in host.
            context={
                "public_key": public_key.openssh_line(with_comment=False),
                "remote_host": url.host,
                "remote_path": url.path,
            },
        )
    if _REPO_MISSING.search(stderr):
        return FetchError(
            "repo_not_found",
            f"{name} has no repository /{url.path} that the deploy key "
            f"{public_key.sha256_fingerprint} may read",
            "check the repository path in the URL; if it is right, the key is probably an "
            "access key of another repository: add it to this one as a read-only access key: "
            f"{public_key.openssh_line(with_comment=False)}",
        )
    if _has(stderr, _FSCK_FAILED) or _FSCK_OBJECT.search(stderr):
        found = _FSCK_OBJECT.search(stderr)
        detail = found.group(0).removeprefix("error: ")[:300] if found else _summary(stderr)
        return FetchError(
            "invalid_object",
            f"{what} from {name} was refused: the repository holds a malformed object ({detail})",
            "the object must be repaired or rewritten in the repository itself (git fsck there "
            "names it); objects that fail the check are never stored here",
        )
    return FetchError(
        "git_failed",
        f"{what} from {name} failed (exit status {run.returncode}): {_summary(stderr)}",
        "run the doctor on the project to check URL, host key, key and access step by step",
        reason="fetch",
    )


def _has(text: str, needles: Iterable[str]) -> bool:
    return any(needle in text for needle in needles)


def _first_matching(text: str, needles: Iterable[str]) -> str:
    return next((needle for needle in needles if needle in text), "")


def _summary(stderr: str) -> str:
    """The first meaningful line: a ``fatal:``/``error:`` line (any case, as servers write
    them), else the remote's first line; git's generic words only when nothing else is left.

    A server states its reason first and adds detail after it (gitolite's
    ``(or you mis-spelled the reponame)``), so the last line is the least telling one.
    """
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(MARKER) and not _has(line, _BOILERPLATE)
    ]
    telling = [line for line in lines if not _has(line, _HUNG_UP)] or lines
    if not telling:
        return "no message"
    chosen = next((line for line in telling if _FAILURE_PREFIX.match(line)), telling[0])
    return chosen[:300]
