"""``repolink doctor``: the seeds' troubleshooting list, automated, one check at a time.

The checks run in the order a connection is built, and stop at the first failure (the rest
are reported ``skipped``), so the failing check names the one thing to fix:

1. ``url`` — the stored URL through :mod:`repolink.urls` (https and the other usual mistakes);
2. ``dns`` — the host name resolves (:func:`repolink.platform.probes.resolve`);
3. ``tcp`` — something accepts TCP connections on the port;
4. ``host_key`` — it sends an ``SSH-2.0-…`` banner, and the host key it presents to the real
   ssh is trusted. ssh runs with the run's known_hosts file and the presented-key reporter of
   :func:`repolink.knownhosts.host_key_ssh_options`; nothing is scanned or trusted here;
5. ``auth`` — the server accepts the deploy key (the only key offered: no agent, no other
   identities). Checks 4 and 5 are one ssh connection asking for a session: ssh exits with
   255 for its own failures (host key, authentication) and with the server's status once
   logged in — Git hosts answer a session with a refusal or a greeting;
6. ``repository`` — ``git ls-remote`` of the repository succeeds with the deploy key, through
   the fetch's own hardened path (:class:`repolink.git.remote.Remote`);
7. ``refs`` — it lists at least one branch or tag.

Every failure carries the error code and fix of :mod:`repolink.git.diagnosis` (or of the
probe that failed). The doctor changes nothing: no connection state, no trust, no key use. The
deploy key lives in the run directory of :func:`repolink.git.remote.open_remote` only
while checks 4–7 run, and never appears in a check.

:class:`DoctorService` reads what the checks need in one short transaction and closes it
before the first probe: no socket, ssh or git runs while the database is held.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from repolink import knownhosts
from repolink.errors import GitError, InvalidInput, RepolinkError, URLError
from repolink.git.remote import Remote, open_remote
from repolink.git.runner import GitRunner
from repolink.keys import PrivateKey
from repolink.knownhosts import PresentedHostKey, TrustedHostKey
from repolink.platform import probes
from repolink.platform.connections import get_connection, parse_connection_url
from repolink.platform.targets import addresses_refusal, forbidden
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.key_records import load_private_key
from repolink.store.models.platform import URL_FROM_CLIENT, Project
from repolink.store.models.user_keys import preferred_key_id
from repolink.urls import SSHURL, parse_ssh_url
from repolink.vault import Vault

log = logging.getLogger(__name__)

URL = "url"
DNS = "dns"
TCP = "tcp"
HOST_KEY = "host_key"
AUTH = "auth"
REPOSITORY = "repository"
REFS = "refs"
TITLES = {
    URL: "URL form",
    DNS: "DNS",
    TCP: "TCP connection",
    HOST_KEY: "SSH banner and host key",
    AUTH: "authentication",
    REPOSITORY: "repository access",
    REFS: "refs visible",
}
CHECKS = tuple(TITLES)

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"

# ssh's exit status for its own failures; once logged in it exits with the server's status.
SSH_OWN_FAILURE = 255
_SHOWN_REFS = 5
_GIT_USER = "git"

CheckCallback = Callable[["Check"], None]


@dataclass(frozen=True)
class Check:
    """One step of the checklist: ``status`` passed/failed/skipped, what was found
    (``detail``), and for a failure its error ``code`` and the fix (``hint``).

    ``reason`` and ``context`` are the failure's, for an adapter that words the fix its own
    way; ``note`` is what the doctor adds to any wording of it (already part of ``hint``)."""

    name: str
    status: str
    detail: str
    code: str | None = None
    hint: str | None = None
    reason: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def title(self) -> str:
        return TITLES[self.name]

    @property
    def ok(self) -> bool:
        return self.status == PASSED

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "ok": self.ok,
            "detail": self.detail,
            "code": self.code,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class DoctorReport:
    """Every check of one project's connection, in order; ``failure`` is the failed one."""

    project: str
    url: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failure(self) -> Check | None:
        return next((check for check in self.checks if check.status == FAILED), None)

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "url": self.url,
            "ok": self.ok,
            "checks": [check.as_dict() for check in self.checks],
        }


@dataclass(frozen=True)
class _Subject:
    """What the checks need, read from the store in one transaction."""

    project: str
    url_text: str
    url: SSHURL | None
    key: PrivateKey
    trusted: tuple[TrustedHostKey, ...]
    url_origin: str | None = None


class DoctorService:
    """``repolink doctor``: a project's connection checked step by step (see the module)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        vault: Callable[[], Vault],
        *,
        runner: GitRunner,
    ) -> None:
        self._settings = settings
        self._runner = runner
        self._store = store
        self._vault = vault

    def check_project(self, project: str, *, on_check: CheckCallback | None = None) -> DoctorReport:
        """Check the repository connection of ``project`` step by step.

        ``on_check`` sees each check as it completes (skipped ones included). A failed check
        is part of the report, not raised; an unknown project or connection raises
        ``NotFound``.
        """
        subject = self._load(project)
        checks: list[Check] = []

        def record(check: Check) -> None:
            checks.append(check)
            if on_check is not None:
                on_check(check)

        for check in _run_checks(self._settings, subject, self._runner):
            record(check)
        for name in CHECKS[len(checks) :]:
            record(Check(name, SKIPPED, "skipped: an earlier check failed"))
        report = DoctorReport(subject.project, subject.url_text, tuple(checks))
        failure = report.failure
        log.info(
            "doctor of %s: %s",
            subject.project,
            "all checks passed" if failure is None else f"{failure.name} failed: {failure.code}",
        )
        return report

    def _load(self, project: str) -> _Subject:
        with self._store.session() as session:
            # Before the vault: a mistyped project name creates no master key file.
            connection = get_connection(session, project)
            vault = self._vault()
            owner = session.get(Project, connection.project_id)
            try:
                url: SSHURL | None = parse_ssh_url(connection.url)
            except URLError:
                url = None  # reported by the URL check
            trusted: tuple[TrustedHostKey, ...] = ()
            if url is not None:
                trusted = tuple(knownhosts.trusted_keys(session, *url.host_port))
            return _Subject(
                project=owner.slug if owner is not None else project,
                url_text=connection.url,
                url=url,
                # The key the project's fetches use: a user key is preferred over the deploy key.
                key=load_private_key(session, vault, preferred_key_id(session, connection)),
                trusted=trusted,
                url_origin=connection.url_origin,
            )


def check_url(text: str) -> Check:
    """Check 1 alone: whether ``text`` is an SSH URL repolink accepts, or which mistake it is."""
    return _url_check(text)[0]


def _run_checks(settings: Settings, subject: _Subject, runner: GitRunner) -> Iterator[Check]:
    """The checks in order, up to and including the first failure."""
    check, url = _url_check(subject.url_text)
    yield check
    if url is None:
        return
    host, port = url.host_port
    timeout = settings.ssh_connect_timeout
    # A client's URL is judged as a fetch judges it (platform/targets.py): every address
    # before connecting, and ssh pinned to the one the TCP check reached.
    client = subject.url_origin == URL_FROM_CLIENT
    policy = settings.network_policy
    refusal = policy.host_refusal(host) if client else None
    if refusal is not None:
        yield _failed(DNS, forbidden(refusal))
        return
    try:
        addresses = probes.resolve(host, port, timeout=timeout)
    except RepolinkError as exc:
        yield _failed(DNS, exc)
        return
    refusal = addresses_refusal(policy, addresses) if client else None
    if refusal is not None:
        yield _failed(DNS, forbidden(refusal))
        return
    yield _passed(DNS, _dns_detail(host, addresses))
    try:
        sock = probes.connect(addresses, host, port, timeout=timeout)
    except RepolinkError as exc:
        yield _failed(TCP, exc)
        return
    with contextlib.closing(sock):
        peer = sock.getpeername()[0]
        pinned = peer if client else None
        at = f" (at {peer})" if peer != host else ""
        yield _passed(TCP, f"{knownhosts.display_name(host, port)} accepts connections{at}")
        try:
            banner = probes.read_banner(sock, host, port, timeout=timeout)
        except RepolinkError as exc:
            yield _failed(HOST_KEY, exc)
            return
    with open_remote(
        settings,
        url,
        subject.key,
        trusted=subject.trusted,
        runner=runner,
        share=False,  # checks 4 and 5 must see a handshake of their own
        pinned_address=pinned,
    ) as remote:
        yield from _remote_checks(remote, banner)


def _remote_checks(remote: Remote, banner: str) -> Iterator[Check]:
    try:
        host_key, auth = _handshake(remote, banner)
    except RepolinkError as exc:  # ssh could not be started
        yield _failed(HOST_KEY, exc)
        return
    yield host_key
    if auth is None:
        return
    yield auth
    if not auth.ok:
        return
    try:
        refs = remote.ls_remote()
    except RepolinkError as exc:
        yield _failed(REPOSITORY, exc)
        return
    name = knownhosts.display_name(*remote.url.host_port)
    yield _passed(REPOSITORY, f"the deploy key may read /{remote.url.path} on {name}")
    if not refs:
        yield Check(
            REFS,
            FAILED,
            f"/{remote.url.path} has no branches or tags: there is nothing to fetch",
            "no_refs",
            "push a branch to the repository, then fetch again",
        )
        return
    yield _passed(REFS, _refs_detail(refs))


def _url_check(text: str) -> tuple[Check, SSHURL | None]:
    try:
        url = parse_connection_url(text)
    except InvalidInput as exc:
        return _failed(URL, exc), None
    host, port = url.host_port
    detail = f"{url.canonical}: host {host}, port {port}, repository /{url.path}"
    if url.user is None:
        detail += (
            "; no user name, so ssh logs in as this machine's user — Bitbucket, GitHub, "
            "GitLab and repolink hosts expect git@"
        )
    else:
        detail += f", user {url.user}"
    return _passed(URL, detail), url


def _handshake(remote: Remote, banner: str) -> tuple[Check, Check | None]:
    """Checks 4 and 5 from one ssh session request; the second is ``None`` when ssh did not
    get past the host key."""
    host, port = remote.url.host_port
    destination = f"{remote.url.user}@{host}" if remote.url.user else host
    run = remote.run([*remote.ssh_argv, "-p", str(port), "--", destination])
    stderr = remote.scrub(run.stderr)
    refused_host = knownhosts.diagnose_ssh_stderr(
        stderr, host=host, port=port, trusted=list(remote.trusted)
    )
    if refused_host is not None:
        return _failed(HOST_KEY, refused_host), None
    presented = _presented(stderr, host, port)
    logged_in = not run.timed_out and run.returncode != SSH_OWN_FAILURE
    error = None if logged_in else remote.failure(run, "logging in with ssh")
    if presented is None:
        # ssh stopped before checking the host key (or is too old to report it).
        return _failed(HOST_KEY, error or _unverified()), None
    host_key = _passed(HOST_KEY, f"{banner}; {_trusted_detail(presented, remote.trusted)}")
    if error is not None:
        return host_key, _auth_failure(error, remote.url)
    key = remote.public_key
    return host_key, _passed(
        AUTH,
        f"{knownhosts.display_name(host, port)} accepted the deploy key {key.key_type} "
        f"{key.sha256_fingerprint}, the only key offered",
    )


def _presented(stderr: str, host: str, port: int) -> PresentedHostKey | None:
    """The host key ssh reported for ``host:port`` (else the last one it reported)."""
    reported = knownhosts.presented_host_keys(stderr)
    wanted = knownhosts.known_hosts_name(host, port)
    mine = [key for key in reported if key.known_hosts_name == wanted] or reported
    return mine[-1] if mine else None


def _unverified() -> RepolinkError:
    return GitError(
        "host_key_unverified",
        "ssh logged in without reporting which host key it verified",
        "this ssh may be older than OpenSSH 8.5 (no KnownHostsCommand): upgrade it",
    )


def _trusted_detail(presented: PresentedHostKey, trusted: tuple[TrustedHostKey, ...]) -> str:
    match = next((key for key in trusted if key.fingerprint == presented.fingerprint), None)
    how = "a shipped pin" if match is not None and match.shipped else "trusted explicitly"
    return f"host key {presented.key_type} {presented.fingerprint} is trusted ({how})"


def _auth_failure(error: RepolinkError, url: SSHURL) -> Check:
    note = ""
    if error.code == "auth_failed" and url.user not in (None, _GIT_USER):
        note = (
            f"also check the user name: the URL logs in as {url.user!r}, while most Git "
            f"hosts expect {_GIT_USER!r}"
        )
    return _failed(AUTH, error, note=note)


def _dns_detail(host: str, addresses: list[probes.Address]) -> str:
    ips = [address.ip for address in addresses]
    if ips == [host]:
        return f"{host} is an IP address: nothing to resolve"
    shown = ", ".join(ips[:4]) + (f" and {len(ips) - 4} more" if len(ips) > 4 else "")
    return f"{host} resolves to {shown}"


def _refs_detail(refs: dict[str, str]) -> str:
    parts = []
    for prefix, singular, plural in (
        ("refs/heads/", "branch", "branches"),
        ("refs/tags/", "tag", "tags"),
    ):
        names = sorted(name.removeprefix(prefix) for name in refs if name.startswith(prefix))
        noun = singular if len(names) == 1 else plural
        if not names:
            parts.append(f"no {noun}")
            continue
        shown = ", ".join(names[:_SHOWN_REFS]) + (", …" if len(names) > _SHOWN_REFS else "")
        parts.append(f"{len(names)} {noun} ({shown})")
    return ", ".join(parts)


def _passed(name: str, detail: str) -> Check:
    return Check(name, PASSED, detail)


def _failed(name: str, error: RepolinkError, *, note: str = "") -> Check:
    hint = f"{error.hint} — {note}" if note else error.hint
    return Check(name, FAILED, error.message, error.code, hint, error.reason, error.context, note)
