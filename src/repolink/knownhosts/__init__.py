"""Host keys: the platform's known-hosts store (architecture.md#words "Known host", §5).

- **Pins** for bitbucket.org, github.com and gitlab.com ship with repolink
  (:mod:`repolink.knownhosts.pins`, each cited from the service's documentation).
- **Trust** for any other ``host[:port]`` is explicit: :func:`trust` contacts the server and
  stores only the presented key whose SHA256 fingerprint the caller checked out of band.
- **Fetches never scan.** A run gets a known_hosts file with exactly the keys trusted for the
  hosts it contacts, and ssh verifies against it strictly.

How a fetch uses this module::

    text = known_hosts_text(session, [url])                  # lines for exactly these hosts
    (run_dir / "known_hosts").write_text(text)               # beside the key, same 0700 dir
    argv = ssh_command(key_path=…, known_hosts_path=run_dir / "known_hosts", …)
    argv += host_key_ssh_options()                           # ssh reports the presented key
    … run git with GIT_SSH_COMMAND=shlex.join(argv) …
    error = diagnose_ssh_stderr(stderr, host=url.host_port[0], port=url.host_port[1],
                                trusted=trusted_keys(session, *url.host_port))
    if error is not None: raise error                        # host_key_unknown / _changed

``repolink.git.environment.ssh_command`` already sets ``StrictHostKeyChecking=yes``,
``UserKnownHostsFile`` and ``GlobalKnownHostsFile=/dev/null``; :func:`host_key_ssh_options` only
adds the reporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repolink.knownhosts.fingerprint import parse_sha256_fingerprint
from repolink.knownhosts.hostport import display_name, known_hosts_name, parse_host_port
from repolink.knownhosts.pins import SHIPPED_PINS, ShippedPin
from repolink.knownhosts.trusted import known_hosts_lines
from repolink.knownhosts.values import ScannedHostKey, Scanner, TrustedHostKey, TrustOutcome

if TYPE_CHECKING:
    from repolink.knownhosts.diagnosis import (
        PresentedHostKey,
        diagnose_ssh_stderr,
        host_key_ssh_options,
        presented_host_keys,
    )
    from repolink.knownhosts.service import (
        known_hosts_text,
        list_known_hosts,
        remove,
        trust,
        trusted_keys,
    )

# Imported on first use: the store (the ORM) and the diagnosis' wording are more than a
# refresh that finds nothing to fetch needs of this package (issue 10 §2).
_LAZY = {
    "PresentedHostKey": "diagnosis",
    "diagnose_ssh_stderr": "diagnosis",
    "host_key_ssh_options": "diagnosis",
    "presented_host_keys": "diagnosis",
    "known_hosts_text": "service",
    "list_known_hosts": "service",
    "remove": "service",
    "trust": "service",
    "trusted_keys": "service",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "SHIPPED_PINS",
    "PresentedHostKey",
    "ScannedHostKey",
    "Scanner",
    "ShippedPin",
    "TrustOutcome",
    "TrustedHostKey",
    "diagnose_ssh_stderr",
    "display_name",
    "host_key_ssh_options",
    "known_hosts_lines",
    "known_hosts_name",
    "known_hosts_text",
    "list_known_hosts",
    "parse_host_port",
    "parse_sha256_fingerprint",
    "presented_host_keys",
    "remove",
    "trust",
    "trusted_keys",
]
