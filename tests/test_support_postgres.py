"""The test databases' housekeeping on the PostgreSQL server (``tests/support/postgres.py``):
templates of other migration sources are dropped unless a test process still holds one, and a
process's leftover databases are dropped after its run."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from support import postgres

TESTS = Path(__file__).parent


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[object]]:
    reason = postgres.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with postgres._connect() as connection:
        yield connection


def _names(admin: psycopg.Connection[object]) -> set[str]:
    return {name for (name,) in admin.execute("SELECT datname FROM pg_database").fetchall()}


def _create_empty(admin: psycopg.Connection[object], dbname: str) -> None:
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def _nobody_else(_pid: int) -> bool:
    """``process_alive`` for the cleanups under test: the test processes of other checkouts
    sharing this server (older test code among them) are not this test's business."""
    return False


def _fake_prefix() -> str:
    """The names of one test's fake templates: its cleanups look at nothing else (the real
    templates are in use by the runs sharing this server)."""
    return f"{postgres._TEMPLATE_PREFIX}fake{uuid.uuid4().hex[:12]}_"


def test_a_stale_template_is_dropped_and_one_another_run_holds_is_kept(
    admin: psycopg.Connection[object],
) -> None:
    prefix = _fake_prefix()
    current, stale, killed_build, held = (
        f"{prefix}{name}" for name in ("current", "stale", "killed_build", "held")
    )
    for dbname in (current, stale, killed_build, held):
        _create_empty(admin, dbname)
    try:
        # A process of another run (other migration sources) making databases from ``held``.
        with postgres._connect() as other:
            other.execute("SELECT pg_advisory_lock_shared(%s)", (postgres._template_key(held),))
            dropped = postgres.drop_stale_templates(
                current, prefix=prefix, process_alive=_nobody_else
            )
            names = _names(admin)
        assert sorted(dropped) == sorted([stale, killed_build])
        assert {current, held} <= names
        assert {stale, killed_build} & names == set()
        # Its process gone (its lock with it), the next run drops it.
        dropped = postgres.drop_stale_templates(current, prefix=prefix, process_alive=_nobody_else)
        assert dropped == [held]
        assert current in _names(admin)
    finally:
        for dbname in (current, stale, killed_build, held):
            postgres._drop(admin, dbname)


def test_this_process_holds_its_template_against_the_cleanups_of_other_runs(
    admin: psycopg.Connection[object],
) -> None:
    """The lock a cleanup must take to drop a template: this process, which makes its
    databases from its template, keeps another session from taking it."""
    key = postgres._template_key(postgres.template())

    taken = admin.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    if taken and taken[0]:
        admin.execute("SELECT pg_advisory_unlock(%s)", (key,))

    assert taken == (False,)


def test_no_template_is_dropped_while_a_process_uses_one_without_saying_which(
    admin: psycopg.Connection[object],
) -> None:
    """A live process with test databases and no holder connection runs older test code,
    which takes no template lock: any template may be its own."""
    prefix = _fake_prefix()
    current, stale = f"{prefix}current", f"{prefix}stale"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    its_database = f"{postgres._DATABASE_PREFIX}{child.pid}_0"
    try:
        for dbname in (current, stale, its_database):
            _create_empty(admin, dbname)

        def only_the_child(pid: int) -> bool:
            return pid == child.pid

        def cleanup() -> list[str]:
            return postgres.drop_stale_templates(
                current, prefix=prefix, process_alive=only_the_child
            )

        assert cleanup() == []
        assert stale in _names(admin)
        with postgres._connect(application_name=f"{postgres._HOLDER_APPLICATION}{child.pid}"):
            assert cleanup() == [stale]
    finally:
        child.communicate(b"")
        for dbname in (current, stale, its_database):
            postgres._drop(admin, dbname)


_LEAKING_RUN = """
import os
from pathlib import Path

from support import postgres

TESTS = Path(__file__).parent


def test_leaves_a_database(postgres_databases):
    postgres_databases.create(migrated=False)  # given back by its fixture
    leaked = postgres._create("template0")  # given back by nothing
    Path(os.environ["LEAK_RECORD"]).write_text(leaked)
"""


def test_the_databases_a_test_run_made_are_gone_after_it(
    admin: psycopg.Connection[object], tmp_path: Path
) -> None:
    """A pytest run that made a database no fixture gave back leaves none of its process's
    databases on the server (before, the next run dropped them, as a dead process's)."""
    (tmp_path / "test_leak.py").write_text(_LEAKING_RUN)
    record = tmp_path / "leaked"
    pytest_options = ("-q", "-p", "no:cacheprovider", "-p", "support.postgres", "-c", os.devnull)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *pytest_options,
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        env={**os.environ, "PYTHONPATH": str(TESTS), "LEAK_RECORD": str(record)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    leaked = record.read_text()
    pid = leaked.removeprefix(postgres._DATABASE_PREFIX).split("_")[0]

    left = {name for name in _names(admin) if name.startswith(f"{postgres._DATABASE_PREFIX}{pid}_")}

    assert left == set()
