"""PostgreSQL for the tests: a fresh database per test, and tests that run on both databases.

The server is ``TEST_POSTGRES_URL`` (a libpq URL of a database the tests may connect to as a
user allowed to create databases; default ``postgresql://postgres@127.0.0.1:5432/postgres``).
When it does not answer, every test that needs it is skipped, saying so.

A fresh database is a copy of a template that has every migration applied, made once for all
processes of all sessions while the migration sources stay the same (its name carries their
hash), so a test's database costs one ``CREATE DATABASE … TEMPLATE`` rather than a migration
run. Every database a test got is dropped after it. Both happen on a background thread of
each test process where they can (one migrated database kept ready, drops queued), so that a
test waits for neither; at the end of the session a process drops whatever of its own is left.

Templates of other migration sources (an older checkout, another worktree) are dropped when a
process first needs the server, unless a process still uses one: each holds a shared advisory
lock on its template's key for the session, and a template is dropped only under the
exclusive one (:func:`drop_stale_templates`). All of it runs under one advisory lock, so two
xdist workers starting at once take turns, and neither drops what the other holds.

Offered (registered as a plugin in ``tests/conftest.py``):

- ``postgres_url`` (fixture): the SQLAlchemy URL (``postgresql+psycopg://…``) of a fresh
  database with every migration applied; ``postgres_empty_url``: of a fresh empty one.
- ``empty_database_url`` (fixture): an empty database of the run's kind (a SQLite file, or a
  fresh PostgreSQL database in the ``[postgresql]`` run).
- ``postgres_databases`` (fixture): a :class:`Databases` factory for more of them —
  ``create()`` (migrated), ``create(migrated=False)`` (empty), ``admin()`` (an autocommit psycopg
  connection to the server's maintenance database); all dropped after the test.
- ``@pytest.mark.databases`` (on a test, a class, or a module's ``pytestmark``): the test runs
  twice, ``[sqlite]`` and ``[postgresql]`` (unless marked ``sqlite_only``); a module's tests
  run as two groups. The modules of the store, the services, the API and the jobs whose tests
  exercise the database carry it; those that would only repeat git, ssh or parsing do not.
  In the PostgreSQL group every :class:`Settings` built without a database URL (by the test,
  by fixtures, by the CLI run in process) gets a migrated database of its own per data
  directory — the same one for the same directory — which child processes get through
  ``Settings.to_env()``; helpers that build a child's environment by hand add
  :func:`database_env`. A test's databases are dropped after it; a module-scoped fixture that
  asks for ``database_backend`` is made again for the group (a store the module shares),
  others (the ``hosted`` peer) stay as made for the first group, on SQLite.
- ``@pytest.mark.sqlite_only("why")`` (a test, or a module's ``pytestmark``): runs on SQLite
  only — a test about the SQLite file itself, or one whose PostgreSQL run would only repeat git.
- ``database_backend`` (fixture): ``"sqlite"`` or ``"postgresql"``, the run the test is in.
- ``--databases=sqlite,postgresql`` (option): which runs ``databases`` tests get (default both).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from repolink.git.keyfiles import process_exists
from repolink.settings import Settings, default_data_dir

BACKENDS = ("sqlite", "postgresql")
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"

_SRC = Path(__file__).resolve().parents[2] / "src" / "repolink"
# What the template's schema is made from: when any of it changes, a new template is made.
TEMPLATE_SOURCES = (
    _SRC / "store" / "migrate.py",
    _SRC / "store" / "migrations",
    _SRC / "store" / "index_triggers.py",
    _SRC / "store" / "change_triggers.py",
)

_TEMPLATE_PREFIX = "rl_tpl_"
_DATABASE_PREFIX = "rl_t_"
_counter = itertools.count()
_template_lock = threading.Lock()
_template_name: str | None = None
# This process's connection holding the shared lock on its template's key (see _hold).
_holder: psycopg.Connection[Any] | None = None
_created_any = False


def _connect(dbname: str | None = None, **more: Any) -> psycopg.Connection[Any]:
    options: dict[str, Any] = {"autocommit": True, "connect_timeout": 3, **more}
    if dbname is not None:
        options["dbname"] = dbname
    return psycopg.connect(ADMIN_URL, **options)


@functools.cache
def unavailable_reason() -> str | None:
    """Why no PostgreSQL test can run here, ``None`` when the server answers."""
    try:
        with _connect() as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return (
            f"no PostgreSQL reachable at TEST_POSTGRES_URL={_masked(ADMIN_URL)} ({first}); "
            "the PostgreSQL runs are skipped"
        )
    return None


def _masked(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def sqlalchemy_url(dbname: str) -> str:
    """The ``postgresql+psycopg://`` URL repolink is given for database ``dbname``."""
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    user = info.get("user") or "postgres"
    password = f":{info['password']}" if info.get("password") else ""
    host = info.get("host") or "127.0.0.1"
    port = info.get("port") or 5432
    return f"postgresql+psycopg://{user}{password}@{host}:{port}/{dbname}"


def _sources_hash() -> str:
    digest = hashlib.sha256()
    for source in TEMPLATE_SOURCES:
        files = sorted(source.rglob("*.py")) if source.is_dir() else [source]
        for path in files:
            digest.update(str(path.relative_to(_SRC)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _exists(admin: psycopg.Connection[Any], dbname: str) -> bool:
    found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
    return found is not None


def _drop(admin: psycopg.Connection[Any], dbname: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def template() -> str:
    """The template database's name, made (once for every process, under an advisory lock)
    by migrating an empty database to the head and renaming it into place."""
    global _template_name
    with _template_lock:
        if _template_name is None:
            _template_name = _make_template()
        return _template_name


def _make_template() -> str:
    from repolink.store import migrate
    from repolink.store.engine import make_engine, parse_database_url

    name = f"{_TEMPLATE_PREFIX}{_sources_hash()}"
    with _connect() as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            _hold(name)
            _drop_orphans(admin)
            _drop_stale(admin, name)
            if _exists(admin, name):
                return name
            building = f"{name}_build"
            _drop(admin, building)
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
            engine = make_engine(parse_database_url(sqlalchemy_url(building)))
            try:
                migrate.upgrade(engine, lock_path=None)
            finally:
                engine.dispose()
            admin.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(building), sql.Identifier(name)
                )
            )
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return name


_LOCK_ID = 0x726C5F7465737473  # "rl_tests"
# The application name of a process's template holder connection: the prefix and its pid.
_HOLDER_APPLICATION = "rl_tests_holder:"


def _drop_orphans(admin: psycopg.Connection[Any]) -> None:
    """Drop the test databases of processes of this machine that are gone (killed runs)."""
    rows = admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{_DATABASE_PREFIX}%",)
    ).fetchall()
    for (dbname,) in rows:
        match = re.fullmatch(rf"{_DATABASE_PREFIX}(\d+)_\d+", dbname)
        if match and not process_exists(int(match.group(1))):
            _drop(admin, dbname)


def _template_key(template_name: str) -> int:
    """The advisory lock key of a template: users hold it shared, its dropper exclusive."""
    return int.from_bytes(hashlib.sha256(template_name.encode()).digest()[:8], "big", signed=True)


def _hold(template_name: str) -> None:
    """Hold the shared lock on ``template_name``'s key until the session ends (take it under
    the ``_LOCK_ID`` lock, before the template is looked for): a run of other sources then
    leaves the template alone while this process makes databases from it."""
    global _holder
    if _holder is None:
        _holder = _connect(application_name=f"{_HOLDER_APPLICATION}{os.getpid()}")
        _holder.execute("SELECT pg_advisory_lock_shared(%s)", (_template_key(template_name),))


def _release_hold() -> None:
    global _holder
    if _holder is not None:
        _holder.close()
        _holder = None


def drop_stale_templates(
    current: str,
    *,
    prefix: str = _TEMPLATE_PREFIX,
    process_alive: Callable[[int], bool] = process_exists,
) -> list[str]:
    """Drop every template database (named ``prefix…``) but ``current`` that no test process
    holds, a killed build's leftover too; the names dropped. None while a live process has
    test databases without saying which template it holds (older test code): it may use any."""
    with _connect() as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            return _drop_stale(admin, current, prefix=prefix, process_alive=process_alive)
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))


def _drop_stale(
    admin: psycopg.Connection[Any],
    current: str,
    *,
    prefix: str = _TEMPLATE_PREFIX,
    process_alive: Callable[[int], bool] = process_exists,
) -> list[str]:
    """:func:`drop_stale_templates` on ``admin``, which holds the ``_LOCK_ID`` lock (no build
    runs meanwhile: a ``…_build`` found is a killed one's)."""
    if _unannounced_users(admin, process_alive):
        return []
    rows = admin.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) AND NOT datistemplate",
        (prefix,),
    ).fetchall()
    dropped: list[str] = []
    for (dbname,) in rows:
        template_name = dbname.removesuffix("_build")
        if template_name == current:
            continue
        key = _template_key(template_name)
        taken = admin.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not taken or not taken[0]:
            continue  # a process of another run makes databases from it now
        try:
            _drop(admin, dbname)
            dropped.append(dbname)
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (key,))
    return dropped


def _unannounced_users(
    admin: psycopg.Connection[Any], process_alive: Callable[[int], bool]
) -> set[int]:
    """The live processes with test databases that hold no template lock by this module's
    protocol (their holder connection names them)."""
    announced = {
        int(name.removeprefix(_HOLDER_APPLICATION))
        for (name,) in admin.execute(
            "SELECT application_name FROM pg_stat_activity WHERE starts_with(application_name, %s)",
            (_HOLDER_APPLICATION,),
        ).fetchall()
        if name.removeprefix(_HOLDER_APPLICATION).isdigit()
    }
    users: set[int] = set()
    for (dbname,) in admin.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (_DATABASE_PREFIX,)
    ).fetchall():
        match = re.fullmatch(rf"{_DATABASE_PREFIX}(\d+)_\d+", dbname)
        if match:
            users.add(int(match.group(1)))
    return {pid for pid in users - announced - {os.getpid()} if process_alive(pid)}


def drop_leftovers(pid: int) -> list[str]:
    """Drop the test databases process ``pid`` made that are still there (a drop that failed,
    a database no fixture gave back); the names dropped."""
    with _connect() as admin:
        rows = admin.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
            (f"{_DATABASE_PREFIX}{pid}_",),
        ).fetchall()
        for (dbname,) in rows:
            _drop(admin, dbname)
    return [dbname for (dbname,) in rows]


class _Background:
    """One thread per test process that drops used databases and keeps one migrated database
    ready; whatever it holds at exit is dropped then (and a killed run's by the next run)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue()
        self._ready: queue.Queue[str] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="test-postgres", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except psycopg.Error:
                pass  # a drop that failed is the next run's orphan; a spare that failed, none
            finally:
                self._jobs.task_done()

    def migrated(self) -> str:
        """A migrated database's name: the ready one, else one made now; another is readied."""
        self._start()
        try:
            dbname = self._ready.get_nowait()
        except queue.Empty:
            dbname = _create(template())
        self._jobs.put(self._ready_one)
        return dbname

    def _ready_one(self) -> None:
        if self._ready.empty():
            self._ready.put(_create(template()))

    def drop(self, dbnames: list[str]) -> None:
        self._start()
        self._jobs.put(lambda: _drop_all(dbnames))

    def close(self) -> None:
        """Wait for the queued work, and drop the ready database."""
        if self._thread is None:
            return
        self._jobs.join()
        leftover: list[str] = []
        while not self._ready.empty():
            leftover.append(self._ready.get_nowait())
        _drop_all(leftover)


def _create(source: str) -> str:
    global _created_any
    _created_any = True
    dbname = f"{_DATABASE_PREFIX}{os.getpid()}_{next(_counter)}"
    with _connect() as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(dbname), sql.Identifier(source)
            )
        )
    return dbname


def _drop_all(dbnames: list[str]) -> None:
    if dbnames:
        with _connect() as admin:
            for dbname in dbnames:
                _drop(admin, dbname)


_background = _Background()


class Databases:
    """Fresh databases for one test; every one dropped by :meth:`drop_all`."""

    def __init__(self) -> None:
        self._made: list[str] = []
        self._by_data_dir: dict[Path, str] = {}
        self._lock = threading.Lock()

    def create(self, *, migrated: bool = True) -> str:
        """The SQLAlchemy URL of a new database: at the head revision, or empty."""
        reason = unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
        dbname = _background.migrated() if migrated else _create("template0")
        with self._lock:
            self._made.append(dbname)
        return sqlalchemy_url(dbname)

    def for_data_dir(self, data_dir: Path) -> str:
        """The migrated database standing for ``data_dir``'s embedded file in this test."""
        key = data_dir.expanduser().resolve()
        with self._lock:
            url = self._by_data_dir.get(key)
        if url is None:
            url = self.create()
            with self._lock:
                url = self._by_data_dir.setdefault(key, url)
        return url

    def made(self) -> int:
        """How many databases were made so far (for :meth:`drop_since`)."""
        with self._lock:
            return len(self._made)

    def drop_since(self, count: int) -> None:
        """Drop the databases made after the first ``count``."""
        with self._lock:
            gone, self._made = self._made[count:], self._made[:count]
            urls = {sqlalchemy_url(dbname) for dbname in gone}
            for key in [key for key, url in self._by_data_dir.items() if url in urls]:
                del self._by_data_dir[key]
        if gone:
            _background.drop(gone)

    def admin(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the server's maintenance database (close it)."""
        return _connect()

    def drop_all(self) -> None:
        with self._lock:
            made, self._made = self._made, []
            self._by_data_dir.clear()
        if made:
            _background.drop(made)


# The databases of the PostgreSQL run of the current test (``databases`` marker), if any.
_active: Databases | None = None


def database_env(data_dir: Path) -> dict[str, str]:
    """What a child process's environment, built by hand for ``data_dir``, adds so that it
    uses the same database as this test: nothing on SQLite, ``REPOLINK_DATABASE_URL`` in the
    PostgreSQL run (when no URL is set already)."""
    if _active is None or os.environ.get("REPOLINK_DATABASE_URL"):
        return {}
    return {"REPOLINK_DATABASE_URL": _active.for_data_dir(Path(data_dir))}


def _settings_init_on(databases: Databases) -> Callable[..., None]:
    original = Settings.__init__

    def init(self: Settings, **given: Any) -> None:
        if "database_url" not in given and not os.environ.get("REPOLINK_DATABASE_URL"):
            data_dir = given.get("data_dir") or os.environ.get("REPOLINK_DATA_DIR")
            directory = Path(data_dir) if data_dir else default_data_dir()
            given["database_url"] = databases.for_data_dir(directory)
        original(self, **given)

    return init


# --- pytest plugin ---------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--databases",
        default=",".join(BACKENDS),
        help="which databases tests marked `databases` run on: sqlite, postgresql or both "
        "(comma-separated; default: sqlite,postgresql)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "databases: runs on SQLite and on PostgreSQL (tests/support/postgres.py)",
    )
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): in a `databases` module, a test about the SQLite file itself",
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    _background.close()
    if _created_any:
        with contextlib.suppress(psycopg.Error):  # what stays is the next run's orphans
            drop_leftovers(os.getpid())
        _release_hold()


def _chosen(config: pytest.Config) -> list[str]:
    chosen = [name.strip() for name in str(config.getoption("--databases")).split(",")]
    unknown = sorted(set(chosen) - set(BACKENDS) - {""})
    if unknown:
        raise pytest.UsageError(f"--databases: unknown {', '.join(unknown)}; use {BACKENDS}")
    return [name for name in BACKENDS if name in chosen]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("databases") is None:
        return
    backends = _chosen(metafunc.config)
    if metafunc.definition.get_closest_marker("sqlite_only") is not None:
        backends = [name for name in backends if name == "sqlite"]
    if not backends:
        backends = ["sqlite"]
    metafunc.parametrize("database_backend", backends, indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def database_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The run a test is in. Module-scoped, so that a module's tests run as two groups and
    a module-scoped fixture that asks for it (a store shared by the module's tests) is made
    again, on PostgreSQL, for the second."""
    global _active
    backend = getattr(request, "param", "sqlite")
    if backend != "postgresql":
        yield backend
        return
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    databases = Databases()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Settings, "__init__", _settings_init_on(databases))
        _active = databases
        try:
            yield backend
        finally:
            _active = None
    databases.drop_all()


@pytest.fixture(autouse=True)
def _databases_of_the_test(database_backend: str) -> Iterator[None]:
    """In the PostgreSQL run, the databases a test (and its function-scoped fixtures) made
    are dropped after it; those of the module's fixtures stay for the module."""
    databases = _active
    if databases is None:
        yield
        return
    since = databases.made()
    yield
    databases.drop_since(since)


@pytest.fixture
def postgres_databases() -> Iterator[Databases]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    databases = Databases()
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture
def postgres_url(postgres_databases: Databases) -> str:
    return postgres_databases.create()


@pytest.fixture
def postgres_empty_url(postgres_databases: Databases) -> str:
    return postgres_databases.create(migrated=False)


@pytest.fixture
def empty_database_url(
    database_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> str:
    """An empty database of this run's kind: a SQLite file under ``tmp_path``, or a fresh
    PostgreSQL database."""
    if database_backend == "postgresql":
        databases: Databases = request.getfixturevalue("postgres_databases")
        return databases.create(migrated=False)
    return f"sqlite:///{tmp_path / 'empty.db'}"
