"""The environment and argv of every git and ssh process repolink starts (architecture.md#security).

- :func:`hardened_env` builds a child's whole environment from scratch: isolated ``HOME``, no
  system or global git config, ssh as the only transport, no prompts, no agent.
- :func:`ssh_command` / :func:`git_ssh_command` are the ssh argv: no config file, only our key,
  strict host key checking against a per-run known_hosts file, timeouts, no forwarding.
- :func:`git_argv` puts the always-on ``-c`` settings (no hooks, ssh only, …) before the
  subcommand.

These only build values; :mod:`repolink.git.runner` starts the processes. URLs reach git only
as ``repolink.urls.SSHURL.git_url``, after ``--``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "CONTROL_PERSIST",
    "MAX_CONTROL_PATH_BYTES",
    "SAFE_DEFAULT_PATH",
    "SERVER_ALIVE_COUNT_MAX",
    "SERVER_ALIVE_INTERVAL",
    "git_argv",
    "git_ssh_command",
    "hardened_env",
    "ssh_command",
]

SAFE_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SERVER_ALIVE_INTERVAL = 15
SERVER_ALIVE_COUNT_MAX = 4
CONTROL_PERSIST = 60
"""Seconds a shared connection outlives its last client, unless the caller says otherwise."""
# ssh binds the master socket at ControlPath plus a 17-character suffix; sun_path holds 108 bytes.
MAX_CONTROL_PATH_BYTES = 90
_DEVNULL = os.devnull

# Keys a caller's ``extra`` may not set: they would undo the hardening.
_PROTECTED_ENV_PREFIXES = ("GIT_CONFIG", "LD_", "DYLD_")
_PROTECTED_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "GIT_ALLOW_PROTOCOL",
        "GIT_ATTR_NOSYSTEM",
        "GIT_TERMINAL_PROMPT",
        "GIT_ASKPASS",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_NO_LAZY_FETCH",
        "GIT_SSH",
        "GIT_SSH_VARIANT",
        "GIT_EXEC_PATH",
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "SSH_ASKPASS",
        "SSH_ASKPASS_REQUIRE",
    }
)

# Always passed to git with -c. Why each one:
_GIT_CONFIG = (
    "core.hooksPath=/dev/null",  # no hooks, from the repository or anywhere else
    "core.fsmonitor=false",  # no fsmonitor hook program
    "protocol.allow=never",  # every transport refused …
    "protocol.ssh.allow=always",  # … but ssh
    "credential.helper=",  # no credential helper programs
    "init.templateDir=",  # new repositories get no template hooks or config
    "gc.auto=0",  # no detached background gc escaping the time limit;
    "maintenance.auto=false",  # the mirror runs gc explicitly
    "submodule.recurse=false",  # submodule URLs come from repository content: only ever
    "fetch.recurseSubmodules=false",  # fetched explicitly, with URLs from repolink.urls
    "safe.bareRepository=explicit",  # no bare repository discovered inside a checkout
)

# Every object git receives is checked by fsck before it is stored (fetch.fsckObjects too, in
# case a repository's own config turned it off), as the built-in host's receive.fsckObjects
# checks pushes: a malformed object (a bad mode, a .git path, a broken header) stops there.
FSCK_ON_RECEIVE = ("-c", "transfer.fsckObjects=true", "-c", "fetch.fsckObjects=true")

_SSH_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+@-]*")
# A known_hosts name: a host name or address, ``[host]:port`` off port 22.
_HOST_KEY_ALIAS = re.compile(r"[A-Za-z0-9._:-]+|\[[A-Za-z0-9._:-]+\]:[0-9]{1,5}")


def hardened_env(home: Path, *, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The complete environment for a git or ssh child, built from scratch.

    Only ``PATH`` is taken from this process (its absolute entries). ``extra`` adds variables
    such as ``GIT_SSH_COMMAND`` or ``GIT_PROTOCOL``; it may not override the hardening
    (:class:`ValueError`, a programming error).
    """
    if not Path(home).is_absolute():
        raise ValueError(f"home must be an absolute path, got {str(home)!r}")
    env = {
        "PATH": _absolute_path_entries(os.environ.get("PATH", "")),
        "HOME": str(home),
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_ALLOW_PROTOCOL": "ssh",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": _DEVNULL,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_NO_LAZY_FETCH": "1",
        "GIT_SSH_VARIANT": "ssh",
        "SSH_ASKPASS_REQUIRE": "never",
    }
    refuse_prompt = _false_program()
    if refuse_prompt is not None:
        env["GIT_ASKPASS"] = refuse_prompt
    for name, value in (extra or {}).items():
        if name in _PROTECTED_ENV or name.startswith(_PROTECTED_ENV_PREFIXES):
            raise ValueError(f"hardened_env: {name} may not be set through extra")
        env[name] = value
    return env


def ssh_command(
    *,
    key_path: Path,
    known_hosts_path: Path,
    connect_timeout: int,
    control_path: Path | None = None,
    port: int | None = None,
    control_persist: int = CONTROL_PERSIST,
    pinned_address: str | None = None,
    host_key_alias: str | None = None,
) -> list[str]:
    """The ssh argv (without destination): only ``key_path``, only ``known_hosts_path``.

    ``pinned_address`` (an IP address) makes ssh connect there instead of resolving the
    destination's name again (``HostName``); ``host_key_alias`` — the destination as
    known_hosts names it, ``[host]:port`` off port 22 — keeps host key verification under the
    name: OpenSSH otherwise looks the key up under the ``HostName`` given.

    ``control_path`` turns on connection sharing (ControlMaster=auto, ControlPersist of
    ``control_persist`` seconds); it must
    sit in a directory only we can write. ``port`` is for running ssh directly; git adds its
    own ``-p`` from the URL. Paths must be absolute and free of whitespace, quotes and ``%``
    (ssh would expand it); they come from our own temp and data directories.
    """
    if isinstance(connect_timeout, bool) or connect_timeout <= 0:
        raise ValueError(f"connect_timeout must be a positive number of seconds: {connect_timeout}")
    options = [
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "AddKeysToAgent=no",
        "PreferredAuthentications=publickey",
        "PubkeyAuthentication=yes",
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
        "HostbasedAuthentication=no",
        "GSSAPIAuthentication=no",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={_ssh_safe_path(known_hosts_path, 'known_hosts_path')}",
        f"GlobalKnownHostsFile={_DEVNULL}",
        "UpdateHostKeys=no",
        "CheckHostIP=no",
        "VerifyHostKeyDNS=no",
        f"ConnectTimeout={int(connect_timeout)}",
        "ConnectionAttempts=1",
        f"ServerAliveInterval={SERVER_ALIVE_INTERVAL}",
        f"ServerAliveCountMax={SERVER_ALIVE_COUNT_MAX}",
        "ForwardAgent=no",
        "ForwardX11=no",
        "ClearAllForwardings=yes",
        "PermitLocalCommand=no",
        "ProxyCommand=none",
        "RequestTTY=no",
        "LogLevel=ERROR",
    ]
    if pinned_address is not None:
        if host_key_alias is None or not _HOST_KEY_ALIAS.fullmatch(host_key_alias):
            raise ValueError(f"a pinned address needs a plain host key alias: {host_key_alias!r}")
        options += [f"HostName={_ip_address(pinned_address)}", f"HostKeyAlias={host_key_alias}"]
    if control_path is None:
        options += ["ControlMaster=no", "ControlPath=none"]
    else:
        safe_control = _ssh_safe_path(control_path, "control_path")
        if len(os.fsencode(safe_control)) > MAX_CONTROL_PATH_BYTES:
            raise ValueError(
                f"control_path is longer than {MAX_CONTROL_PATH_BYTES} bytes: {safe_control!r}"
            )
        options += [
            "ControlMaster=auto",
            f"ControlPath={safe_control}",
            f"ControlPersist={int(control_persist)}",
        ]
    argv = ["ssh", "-F", _DEVNULL]
    for option in options:
        argv += ["-o", option]
    if port is not None:
        if isinstance(port, bool) or not 0 < port <= 65535:
            raise ValueError(f"port must be 1..65535: {port}")
        argv += ["-p", str(port)]
    argv += ["-i", _ssh_safe_path(key_path, "key_path")]
    return argv


def git_ssh_command(
    *,
    key_path: Path,
    known_hosts_path: Path,
    connect_timeout: int,
    control_path: Path | None = None,
) -> str:
    """:func:`ssh_command` quoted for ``GIT_SSH_COMMAND`` (git runs it through ``sh -c``)."""
    return shlex.join(
        ssh_command(
            key_path=key_path,
            known_hosts_path=known_hosts_path,
            connect_timeout=connect_timeout,
            control_path=control_path,
        )
    )


def git_argv(*args: str, git_dir: Path | None = None) -> list[str]:
    """``git -c … [--git-dir=DIR] ARGS…``: the always-on settings come before the subcommand.

    Give a bare repository (a mirror) as ``git_dir``: with ``safe.bareRepository=explicit``
    git refuses to discover one from the working directory. Automatic gc is off; whoever owns
    a repository runs ``git gc`` / ``git maintenance run`` on it explicitly.
    """
    argv = ["git"]
    for setting in _GIT_CONFIG:
        argv += ["-c", setting]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    argv.extend(args)
    return argv


def _absolute_path_entries(path_value: str) -> str:
    entries: list[str] = []
    for entry in path_value.split(os.pathsep):
        if os.path.isabs(entry) and entry not in entries:
            entries.append(entry)
    return os.pathsep.join(entries) or SAFE_DEFAULT_PATH


def _false_program() -> str | None:
    for candidate in ("/bin/false", "/usr/bin/false"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _ip_address(text: str) -> str:
    """``text`` as an IP address literal (an IPv6 zone kept); anything else is a programming
    error: ssh would resolve a name again."""
    address, _, zone = text.partition("%")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"pinned_address must be an IP address: {text!r}") from None
    if zone and not re.fullmatch(r"[A-Za-z0-9._-]+", zone):
        raise ValueError(f"pinned_address has an invalid zone: {text!r}")
    return text


def _ssh_safe_path(path: Path, name: str) -> str:
    text = str(path)
    if not _SSH_SAFE_PATH.fullmatch(text):
        raise ValueError(
            f"{name} must be an absolute path of letters, digits and ._/+@- only: {text!r}"
        )
    return text
