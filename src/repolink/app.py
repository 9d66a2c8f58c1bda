"""The application object: the one composition root every adapter builds from.

``Repolink(settings)`` owns what every part of repolink shares — the settings, the store (opened
on first use), the vault (loaded on first use, once), the git runner, the clock — and hands out
the services. Every process a service starts goes through that one runner, so a test can record
them all by giving its own (wrapping the hardened one) instead of patching module globals.
The CLI builds one per command, ``serve`` one per process, a test one per case; nothing is built
at import time. Adapters take their services from here and never construct one themselves, so a
service is wired the same way wherever it is called from.

See docs/architecture.md for the layers: this module sits above the services and below the
adapters.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from repolink.git.runner import GitRunner, HardenedRunner
from repolink.settings import Settings, load_settings
from repolink.store.clock import Clock, utcnow
from repolink.vault import Vault, VaultLoader

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from repolink.accounts.access import AccessService
    from repolink.accounts.audit import AuditService
    from repolink.accounts.checkout_key_access import CheckoutKeyAccess
    from repolink.accounts.sessions import SessionService
    from repolink.accounts.tokens import TokenService
    from repolink.accounts.users import UserService
    from repolink.admin import AdminService
    from repolink.auth.principal_cache import PrincipalCache
    from repolink.host.events import RefUpdate
    from repolink.host.git_commands import GitCommands
    from repolink.host.hooks import HookService
    from repolink.host.info import RepositoryInfo
    from repolink.host.service import HostService
    from repolink.host.webhooks import DeliveryWorker
    from repolink.jobs.procrastinate_backend import (
        ProcrastinateJobs,
        ProcrastinateWorker,
        TableDispatch,
    )
    from repolink.platform.additional_keys import AdditionalKeyService
    from repolink.platform.changes import ChangeFeed
    from repolink.platform.checkout import CheckoutService
    from repolink.platform.checkout_keys import CheckoutKeyService
    from repolink.platform.commits import CommitService
    from repolink.platform.connect import ConnectionService
    from repolink.platform.doctor import DoctorService
    from repolink.platform.fetch import FetchService
    from repolink.platform.fetch_dispatch import FetchDispatch
    from repolink.platform.fetch_progress import FetchProgressService
    from repolink.platform.fetch_requests import FetchRequestService
    from repolink.platform.fetch_worker import FetchWorker
    from repolink.platform.key_inventory import KeyService
    from repolink.platform.key_rules import KeyRuleService
    from repolink.platform.known_hosts import KnownHostService
    from repolink.platform.projects import ProjectService
    from repolink.platform.refresh import RefreshService
    from repolink.platform.rotation import DeployKeyService
    from repolink.platform.webhooks_in import WebhookInService
    from repolink.store import Store


class BackgroundWork(Protocol):
    """A part of a server that runs jobs in its background: webhook deliveries, fetches.

    The server starts each and stops each at shutdown with the time left of the grace
    period; it knows no job kind (:meth:`Repolink.background_work` says which parts there
    are). A part that also wants to hear of pushes to the built-in host is a
    :class:`PushListener` too.
    """

    async def start(self) -> None: ...

    async def stop(self, grace: float | None = None) -> None:
        """Claim nothing more; let running jobs finish within ``grace`` seconds, then cancel
        them so that the next start runs them again."""
        ...


@runtime_checkable
class PushListener(Protocol):
    """A background part told of every push to the built-in host (a webhook delivery, the
    fetch of a project connected to the pushed repository)."""

    async def on_push(self, repository: RepositoryInfo, updates: Sequence[RefUpdate], /) -> None:
        """A push to the built-in host succeeded; never raises."""
        ...


class Repolink:
    """One repolink application: settings, store, vault, runner and clock, and the services on
    them.

    Use it as a context manager, or call :meth:`close`; closing disposes of the store's
    connections if the store was opened.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        vault: Vault | None = None,
        runner: GitRunner | None = None,
        clock: Clock = utcnow,
        password_hasher: PasswordHasher | None = None,
    ) -> None:
        self.settings = settings
        # None: argon2id with the library's recommended parameters; a test gives cheaper ones.
        self.password_hasher = password_hasher
        self.runner: GitRunner = runner if runner is not None else HardenedRunner()
        self.clock = clock
        self.vault = VaultLoader(settings, vault)
        self._store = store
        self._owns_store = store is None
        self._lock = threading.RLock()
        self._jobs_worker: ProcrastinateWorker | None = None

    @classmethod
    def from_environment(cls) -> Repolink:
        """The application the ``REPOLINK_`` environment describes."""
        return cls(load_settings())

    # -- what every service shares ---------------------------------------------------------

    @property
    def store(self) -> Store:
        """The database, opened (and migrated) the first time it is asked for."""
        store = self._store
        if store is None:
            # Imported here: commands that never touch the database (sshd's authorized-keys
            # look-up aside, `keys inspect`) should not pay for SQLAlchemy.
            from repolink.store import Store

            with self._lock:
                if self._store is None:
                    self._store = Store.open(self.settings)
                store = self._store
        return store

    # -- accounts: users, tokens, project access, the audit log -----------------------------

    @cached_property
    def users(self) -> UserService:
        from repolink.accounts.users import UserService

        return UserService(
            self.store, clock=self.clock, hasher=self.password_hasher, principals=self.principals
        )

    @cached_property
    def api_tokens(self) -> TokenService:
        from repolink.accounts.tokens import TokenService

        return TokenService(self.settings, self.store, clock=self.clock, principals=self.principals)

    @cached_property
    def principals(self) -> PrincipalCache:
        """Who tokens were found to be, shared by the services that authenticate and revoke."""
        from repolink.auth.principal_cache import PrincipalCache

        return PrincipalCache()

    @cached_property
    def sessions(self) -> SessionService:
        """Sign-ins to the web pages (one per process: it counts failed sign-ins)."""
        from repolink.accounts.sessions import SessionService

        return SessionService(self.store, self.users, clock=self.clock)

    @cached_property
    def access(self) -> AccessService:
        from repolink.accounts.access import AccessService

        return AccessService(self.store, self.projects, clock=self.clock)

    @cached_property
    def audit(self) -> AuditService:
        from repolink.accounts.audit import AuditService

        return AuditService(self.store, clock=self.clock)

    # -- the built-in host -----------------------------------------------------------------

    @cached_property
    def host(self) -> HostService:
        from repolink.host.service import HostService

        return HostService(self.settings, self.store, runner=self.runner)

    @cached_property
    def hooks(self) -> HookService:
        from repolink.host.hooks import HookService

        return HookService(self.settings, self.store, self.host, vault=self.vault)

    @cached_property
    def git_commands(self) -> GitCommands:
        """One git command over SSH, the same for the embedded server and OpenSSH mode."""
        from repolink.host.git_commands import GitCommands
        from repolink.host.repo_storage import RepositoryStorage

        return GitCommands(self.host, RepositoryStorage(self.settings, runner=self.runner))

    # -- the platform: projects, connections, fetches, commits, checkout ---------------------

    @cached_property
    def projects(self) -> ProjectService:
        from repolink.platform.projects import ProjectService

        return ProjectService(self.settings, self.store, clock=self.clock)

    @cached_property
    def connections(self) -> ConnectionService:
        from repolink.platform.connect import ConnectionService

        return ConnectionService(
            self.settings, self.store, self.vault, self.fetches, clock=self.clock
        )

    @cached_property
    def fetches(self) -> FetchService:
        from repolink.platform.fetch import FetchService

        return FetchService(
            self.settings, self.store, self.vault, runner=self.runner, clock=self.clock
        )

    @cached_property
    def refreshes(self) -> RefreshService:
        """A fetch asked for from a shell (``repolink fetch``): a no-op one answered without
        loading the fetch service, which carries out any other."""
        from repolink.platform.refresh import RefreshService

        return RefreshService(
            self.settings,
            self.store,
            self.vault,
            lambda: self.fetches,
            runner=self.runner,
            clock=self.clock,
        )

    @cached_property
    def fetch_requests(self) -> FetchRequestService:
        """Fetches queued as jobs (at most one running and one waiting per connection), and
        the fetch history."""
        from repolink.platform.fetch_queue import FetchQueue
        from repolink.platform.fetch_requests import FetchRequestService

        return FetchRequestService(
            self.store,
            self.fetches,
            clock=self.clock,
            gather={"webhook": timedelta(seconds=self.settings.webhook_gather)},
            queue=FetchQueue(
                self.store,
                clock=self.clock,
                waker=self.fetch_dispatch,
                lease=timedelta(seconds=self.settings.fetch_lease),
            ),
        )

    @cached_property
    def fetch_progress(self) -> FetchProgressService:
        """The progress git reported to running fetch runs, for adapters that show it."""
        from repolink.platform.fetch_progress import FetchProgressService

        return FetchProgressService(self.store)

    @cached_property
    def webhooks_in(self) -> WebhookInService:
        """Each project's webhook secret and received deliveries; a delivery queues a fetch."""
        from repolink.platform.webhooks_in import WebhookInService

        # The fetch requests on demand: a secret is read without building the job machinery.
        return WebhookInService(
            self.store, self.vault, lambda: self.fetch_requests, clock=self.clock
        )

    @cached_property
    def commits(self) -> CommitService:
        from repolink.platform.commits import CommitService

        return CommitService(self.settings, self.store, runner=self.runner)

    @cached_property
    def checkouts(self) -> CheckoutService:
        from repolink.platform.checkout import CheckoutService

        return CheckoutService(
            self.settings, self.store, self.vault, runner=self.runner, clock=self.clock
        )

    # -- the platform: deploy and additional keys, key rules, rotation, doctor, known hosts ---

    @cached_property
    def keys(self) -> KeyService:
        from repolink.platform.key_inventory import KeyService

        return KeyService(self.store, clock=self.clock)

    @cached_property
    def deploy_keys(self) -> DeployKeyService:
        from repolink.platform.rotation import DeployKeyService

        return DeployKeyService(
            self.settings, self.store, self.vault, self.fetches, clock=self.clock
        )

    @cached_property
    def additional_keys(self) -> AdditionalKeyService:
        from repolink.platform.additional_keys import AdditionalKeyService

        return AdditionalKeyService(self.store, self.vault, clock=self.clock)

    @cached_property
    def key_rules(self) -> KeyRuleService:
        from repolink.platform.key_rules import KeyRuleService

        return KeyRuleService(self.store, clock=self.clock)

    @cached_property
    def checkout_keys(self) -> CheckoutKeyService:
        """CircleCI's checkout keys: the deploy key and the users' keys, and which is preferred."""
        from repolink.platform.checkout_keys import CheckoutKeyService

        return CheckoutKeyService(self.store, self.vault, self.deploy_keys, clock=self.clock)

    @cached_property
    def checkout_key_access(self) -> CheckoutKeyAccess:
        """Checkout keys with their role checks and audit entries (the API's and the page's)."""
        from repolink.accounts.checkout_key_access import CheckoutKeyAccess

        return CheckoutKeyAccess(self.checkout_keys, self.access, self.audit)

    @cached_property
    def doctor(self) -> DoctorService:
        from repolink.platform.doctor import DoctorService

        return DoctorService(self.settings, self.store, self.vault, runner=self.runner)

    @cached_property
    def known_hosts(self) -> KnownHostService:
        from repolink.git.keyscan import scanner_for
        from repolink.platform.known_hosts import KnownHostService

        # The store on demand: a scan needs no database, and must not create a data directory.
        return KnownHostService(
            self.settings, lambda: self.store, scanner=scanner_for(self.settings, self.runner)
        )

    @cached_property
    def admin(self) -> AdminService:
        from repolink.admin import AdminService

        return AdminService(self.settings, self.store, self.vault)

    @cached_property
    def changes(self) -> ChangeFeed:
        """The change feed of this process: a project's commit index or fetch state changed
        (LISTEN/NOTIFY on PostgreSQL; on SQLite this process's writes, and polling)."""
        from repolink.platform.changes import ChangeFeed

        settings = self.settings
        timing = {
            "heartbeat": settings.live_heartbeat,
            "poll_interval": settings.live_poll_interval,
        }
        url = settings.resolved_database_url
        if url.partition(":")[0].startswith("postgresql"):
            from repolink.jobs.procrastinate_backend import conninfo

            return ChangeFeed(conninfo(url), **timing)
        feed = ChangeFeed(None, **timing)
        self.store.after_writes(feed.poke)
        return feed

    # -- jobs ------------------------------------------------------------------------------

    @cached_property
    def job_backend(self) -> ProcrastinateJobs | None:
        """Where jobs run beyond this process: procrastinate on PostgreSQL (any number of
        workers on any machines); ``None`` on SQLite, whose jobs stay rows claimed by the
        in-process workers. The one place the backend is chosen."""
        url = self.settings.resolved_database_url
        if not url.partition(":")[0].startswith("postgresql"):
            return None  # decided before importing anything: SQLite commands stay light
        from repolink.jobs.procrastinate_backend import ProcrastinateJobs

        stalled_after = self.settings.worker_stalled_after
        return ProcrastinateJobs(
            url,
            heartbeat_interval=stalled_after / 3,
            stalled_after=stalled_after,
            shutdown_grace=self.settings.shutdown_grace,
        )

    @cached_property
    def fetch_dispatch(self) -> FetchDispatch | None:
        """Fetch runs carried out by procrastinate's workers (PostgreSQL), else ``None``."""
        jobs = self.job_backend
        if jobs is None:
            return None
        from repolink.platform.fetch_dispatch import FetchDispatch

        return FetchDispatch(jobs, lambda: self.fetch_requests, worker=lambda: self.worker_id)

    @cached_property
    def worker_id(self) -> str:
        """This process's worker id: its data directory's, which names its mirrors."""
        from repolink.jobs.identity import worker_id

        return worker_id(self.settings.resolved_data_dir)

    @cached_property
    def delivery_dispatch(self) -> TableDispatch | None:
        """The host's webhook deliveries carried out by procrastinate (PostgreSQL), else
        ``None``."""
        jobs = self.job_backend
        if jobs is None:
            return None
        from repolink.host.webhooks import delivery_dispatch

        return delivery_dispatch(
            jobs, self.store, self.vault, network_policy=self.settings.network_policy
        )

    def jobs_worker(
        self, *, concurrency: int | None = None, fetches: bool = True
    ) -> ProcrastinateWorker | None:
        """This process's procrastinate worker (PostgreSQL), running every kind of job —
        fetches only if ``fetches`` — ``concurrency`` at a time (the first caller's choice
        decides); ``None`` on SQLite."""
        jobs = self.job_backend
        if jobs is None:
            return None
        with self._lock:
            if self._jobs_worker is None:
                from repolink.jobs.procrastinate_backend import ProcrastinateWorker
                from repolink.platform.fetch_dispatch import FETCH_QUEUE, worker_queue
                from repolink.platform.fetch_jobs import DEFAULT_FETCH_CONCURRENCY

                # Every task is registered before the worker starts.
                _ = self.fetch_dispatch, self.delivery_dispatch
                queues = [name for name in jobs.queues if fetches or name != FETCH_QUEUE]
                name = "repolink"
                if fetches:
                    # Its own queue too, where the fetches of the connections its mirrors
                    # hold are sent; the name marks it as listening there.
                    name = worker_queue(self.worker_id)
                    queues.append(name)
                self._jobs_worker = ProcrastinateWorker(
                    jobs,
                    concurrency=concurrency or DEFAULT_FETCH_CONCURRENCY,
                    name=name,
                    queues=queues,
                )
            return self._jobs_worker

    def delivery_worker(
        self, *, ssh_url_base: str | None = None, run_jobs: bool = True
    ) -> DeliveryWorker:
        """A worker sending the host's webhook deliveries; ``ssh_url_base`` (the SSH server's
        ``ssh://git@host:port``) puts clone links into the payloads of the pushes it enqueues.
        ``run_jobs`` false: it only enqueues them, for workers elsewhere."""
        # Imported here: it needs httpx, which the OpenSSH-mode commands never load.
        from repolink.host.webhooks import DeliveryWorker

        return DeliveryWorker(
            self.store,
            self.vault,
            ssh_url_base=ssh_url_base,
            network_policy=self.settings.network_policy,
            dispatch=self.delivery_dispatch,
            jobs_worker=self.jobs_worker() if run_jobs else None,
            run_jobs=run_jobs,
        )

    def fetch_worker(
        self,
        *,
        concurrency: int | None = None,
        ssh_url_base: str | None = None,
        run_jobs: bool = True,
    ) -> FetchWorker:
        """A worker carrying out queued fetches in the background of a server, ``concurrency``
        connections at a time (default: ``fetch_jobs.DEFAULT_FETCH_CONCURRENCY``). With
        ``ssh_url_base`` (the built-in SSH host's ``ssh://git@HOST:PORT``) its ``on_push``
        queues the fetches of the projects connected to a repository pushed to. ``run_jobs``
        false: it only queues them, for workers elsewhere."""
        from repolink.platform.fetch_jobs import DEFAULT_FETCH_CONCURRENCY
        from repolink.platform.fetch_worker import FetchWorker
        from repolink.platform.hosted_pushes import ServerAddress

        concurrency = concurrency or DEFAULT_FETCH_CONCURRENCY
        return FetchWorker(
            self.fetch_requests,
            concurrency=concurrency,
            server=ServerAddress.from_ssh_url_base(ssh_url_base) if ssh_url_base else None,
            jobs_worker=self.jobs_worker(concurrency=concurrency) if run_jobs else None,
            run_jobs=run_jobs,
        )

    def background_work(
        self, *, ssh_url_base: str | None, fetch_workers: int, run_jobs: bool = True
    ) -> list[BackgroundWork]:
        """What a server runs in its background, in start order: the one place a kind of
        background job is added. ``fetch_workers`` is how many fetches run at once (0: this
        process runs none; on PostgreSQL, how many jobs of any kind); ``ssh_url_base`` is how
        clients reach the built-in SSH host. ``run_jobs`` false (``serve --no-workers``): this
        process only queues jobs — a push's deliveries and fetches — for workers elsewhere."""
        if run_jobs:  # the process's worker, as this server wants it
            self.jobs_worker(concurrency=fetch_workers or None, fetches=fetch_workers > 0)
        parts: list[BackgroundWork] = []
        with contextlib.suppress(ImportError):  # the HTTP/webhook side is optional
            parts.append(self.delivery_worker(ssh_url_base=ssh_url_base, run_jobs=run_jobs))
        if fetch_workers > 0 or not run_jobs:
            parts.append(
                self.fetch_worker(
                    concurrency=max(fetch_workers, 1), ssh_url_base=ssh_url_base, run_jobs=run_jobs
                )
            )
        parts.append(self.session_purge())
        return parts

    def session_purge(self) -> BackgroundWork:
        """Deletes the rows of ended web sessions in a server's background."""
        from repolink.accounts.session_purge import SessionPurge

        return SessionPurge(self.sessions)

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        jobs = self.__dict__.get("job_backend")
        if jobs is not None:
            jobs.close()
        with self._lock:
            store, self._store = self._store, None
        if store is not None and self._owns_store:
            store.close()

    def __enter__(self) -> Repolink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
