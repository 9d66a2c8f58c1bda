"""Deploy key rotation and the key inventory, against the built-in host over real ssh and git."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, ForeignKey, String, Table, select, text, update
from sqlalchemy.exc import IntegrityError

from repolink.app import Repolink
from repolink.errors import Conflict, FetchError, NotFound, ValidationError
from repolink.git.progress import INDEXING, FetchProgress
from repolink.keys import generate_key
from repolink.platform.connections import (
    create_connection,
    parse_connection_url,
)
from repolink.platform.key_inventory import ROTATE_FLAG, KeyStatus
from repolink.platform.projects import ProjectService
from repolink.settings import Settings
from repolink.store import Store, utcnow
from repolink.store.base import Base
from repolink.store.key_records import store_private_key
from repolink.store.models import KeyRecord
from repolink.store.models.platform import KEY_GENERATED
from repolink.store.models.rotation import KeyRotation, rotation_key_ids
from repolink.vault import load_vault
from support.platformkit import WORKSPACE, HostedRepos, Platform, granted_key

pytestmark = pytest.mark.databases


def _keys(platform: Platform, **kwargs: Any) -> dict[str, KeyStatus]:
    return {key.fingerprint_sha256: key for key in platform.app.keys.list_keys(**kwargs)}


def _deploy_key(platform: Platform, project: str) -> str:
    return platform.app.connections.connection_info(project).deploy_key.fingerprint_sha256


def _record(platform: Platform, fingerprint: str) -> KeyRecord:
    with platform.store.session() as session:
        record = session.scalar(
            select(KeyRecord).where(KeyRecord.fingerprint_sha256 == fingerprint)
        )
        assert record is not None
        return record


def _access_key_id(hosted: HostedRepos, fingerprint: str) -> int:
    keys = hosted.host.service.list_access_keys(WORKSPACE, "app")
    return next(key.id for key in keys if key.fingerprint_sha256 == fingerprint)


# --- schema ------------------------------------------------------------------------------------


def test_migration_matches_the_model(store: Store) -> None:
    def mine(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) == "key_rotations"

    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": mine}
        )
        assert compare_metadata(context, Base.metadata) == []
        postgresql = connection.dialect.name == "postgresql"
        index_sql = connection.execute(
            text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_key_rotations_pending'"
                if postgresql
                else "SELECT sql FROM sqlite_master WHERE name = 'uq_key_rotations_pending'"
            )
        ).scalar_one()
    # compare_metadata does not look at a partial index's condition; the condition is the point.
    wanted = "WHERE ((state)::text = 'pending'::text)" if postgresql else "WHERE state = 'pending'"
    assert index_sql.endswith(wanted)


def test_one_pending_rotation_per_connection_is_enforced_by_the_database(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.connect("unique", hosted.app.url())
    started = platform.app.deploy_keys.start_rotation("unique")
    connection_id = platform.app.connections.connection_info("unique").id
    with platform.store.session() as session:
        row = session.scalar(select(KeyRotation).where(KeyRotation.connection_id == connection_id))
        assert row is not None and row.new_key_id == started.rotation.new_key.id
    with pytest.raises(IntegrityError), platform.store.session() as session:
        other = session.scalar(select(KeyRecord.id).where(KeyRecord.id != row.new_key_id))
        session.add(KeyRotation(connection_id=connection_id, new_key_id=other, state="pending"))


# --- rotation end to end -----------------------------------------------------------------------


def test_rotation_end_to_end(platform: Platform, hosted: HostedRepos) -> None:
    # Connected with key A, added to the repository as an access key.
    outcome = platform.connect("rot", hosted.app.url(), grant_on="app")
    assert outcome.error is None
    key_a = outcome.connection.deploy_key.fingerprint_sha256

    # Rotate: key B is pending, A stays the deploy key and keeps working.
    started = platform.app.deploy_keys.start_rotation("rot")
    key_b = started.rotation.new_key.fingerprint_sha256
    assert key_b != key_a
    assert started.rotation.current_key.fingerprint_sha256 == key_a
    assert started.rotation.new_key.public_key.startswith("ssh-ed25519 AAAA")
    assert started.rotation.new_key.fingerprint_md5.startswith("MD5:")
    assert "PRIVATE KEY" not in json.dumps(started.as_dict())
    assert _deploy_key(platform, "rot") == key_a
    assert _keys(platform)[key_b].state == "pending"

    sha = hosted.app.commit("while key B is pending")
    assert platform.fetch("rot").new_commits == 1
    assert _record(platform, key_a).last_used_at is not None
    assert _record(platform, key_b).last_used_at is None

    # B is not on the repository yet: completing fails with the diagnosis, nothing changes.
    with pytest.raises(FetchError) as refused:
        platform.app.deploy_keys.complete_rotation("rot")
    assert refused.value.code == "auth_failed"
    assert key_b in refused.value.message
    assert started.rotation.new_key.public_key in refused.value.hint
    assert _deploy_key(platform, "rot") == key_a
    still = platform.app.deploy_keys.pending_rotation("rot")
    # The connection's state describes its deploy key, which still works.
    assert platform.app.connections.connection_info("rot").state == "ok"
    assert still is not None and still.new_key.fingerprint_sha256 == key_b
    assert _record(platform, key_a).retired_at is None

    # B added as an access key: completing fetches with B, then swaps.
    hosted.host.service.add_access_key(
        WORKSPACE, "app", started.rotation.new_key.public_key, label="rot B"
    )
    newer = hosted.app.commit("fetched with key B")
    completed = platform.app.deploy_keys.complete_rotation("rot")

    assert completed.deploy_key.fingerprint_sha256 == key_b
    assert completed.retired_key.fingerprint_sha256 == key_a
    assert completed.fetch.new_commits == 1
    assert _deploy_key(platform, "rot") == key_b
    old, new = _record(platform, key_a), _record(platform, key_b)
    assert old.retired_at == completed.retired_at
    assert old.private_key_encrypted is None  # a retired key's private half is erased
    assert new.last_used_at is not None and new.retired_at is None
    assert platform.app.deploy_keys.pending_rotation("rot") is None
    with platform.store.session() as session:
        commits = session.execute(text("SELECT sha FROM commits")).scalars().all()
    assert {sha, newer} <= set(commits)

    # A removed from the repository: fetches go on with B.
    hosted.host.service.remove_access_key(WORKSPACE, "app", _access_key_id(hosted, key_a))
    hosted.app.commit("after A was removed")
    assert platform.fetch("rot").new_commits == 1

    listed = _keys(platform)
    assert (listed[key_a].project, listed[key_a].state) == ("rot", "retired")
    assert (listed[key_b].project, listed[key_b].state) == ("rot", "active")
    assert listed[key_b].last_used_at is not None
    assert listed[key_b].last_used_at > listed[key_a].last_used_at  # type: ignore[operator]


def test_a_retired_key_is_never_used_again(platform: Platform, hosted: HostedRepos) -> None:
    platform.connect("never", hosted.app.url(), grant_on="app")
    started = platform.app.deploy_keys.start_rotation("never")
    hosted.host.service.add_access_key(
        WORKSPACE, "app", started.rotation.new_key.public_key, label="never B"
    )
    completed = platform.app.deploy_keys.complete_rotation("never")

    with pytest.raises(Conflict) as refused:
        platform.app.fetches.fetch_connection(
            completed.fetch.connection_id, key_record_id=completed.retired_key.id
        )
    assert refused.value.code == "key_retired"
    assert completed.retired_key.fingerprint_sha256 in refused.value.message


# --- starting, replacing and aborting ----------------------------------------------------------


def test_second_rotate_is_refused_then_replaced_then_aborted(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.connect("again", hosted.app.url())
    first = platform.app.deploy_keys.start_rotation("again")

    with pytest.raises(Conflict) as refused:
        platform.app.deploy_keys.start_rotation("again")
    assert refused.value.code == "rotation_pending"
    assert first.rotation.new_key.fingerprint_sha256 in refused.value.message
    assert "start over with another new key in its place" in refused.value.hint
    assert "--" not in refused.value.hint  # the CLI names its options, the service does not
    assert refused.value.context == {"project": "again"}

    second = platform.app.deploy_keys.start_rotation(
        "again", key_type="ecdsa", replace_pending=True
    )
    assert second.replaced == first.rotation.new_key
    assert second.rotation.new_key.key_type == "ecdsa-sha2-nistp256"
    with platform.store.session() as session:
        # The replaced key is gone altogether, private half included.
        assert session.get(KeyRecord, first.rotation.new_key.id) is None

    discarded = platform.app.deploy_keys.abort_rotation("again").discarded
    assert discarded == second.rotation.new_key
    with platform.store.session() as session:
        assert session.get(KeyRecord, discarded.id) is None
    assert platform.app.deploy_keys.pending_rotation("again") is None
    for attempt in (
        lambda: platform.app.deploy_keys.abort_rotation("again"),
        lambda: platform.app.deploy_keys.complete_rotation("again"),
    ):
        with pytest.raises(NotFound) as nothing:
            attempt()
        assert nothing.value.code == "rotation_not_pending"


def test_rotation_of_an_unknown_or_unconnected_project_is_named(platform: Platform) -> None:
    platform.project("bare")
    with pytest.raises(NotFound) as unconnected:
        platform.app.deploy_keys.start_rotation("bare")
    assert unconnected.value.code == "connection_not_found"
    with pytest.raises(NotFound) as unknown:
        platform.app.deploy_keys.start_rotation("no-such-project")
    assert unknown.value.code == "project_not_found"


@pytest.mark.parametrize("meanwhile", ["abort", "replace"])
def test_a_completion_that_lost_a_race_changes_nothing(
    platform: Platform, hosted: HostedRepos, meanwhile: str
) -> None:
    project = f"race-{meanwhile}"
    platform.connect(project, hosted.app.url(), grant_on="app")
    started = platform.app.deploy_keys.start_rotation(project)
    hosted.app.commit("so that the fetch reports progress")
    hosted.host.service.add_access_key(
        WORKSPACE, "app", started.rotation.new_key.public_key, label=project
    )
    raced: list[FetchProgress] = []

    def meanwhile_in_another_process(step: FetchProgress) -> None:
        # While git fetches with the new key (not while indexing, which holds the database).
        if step.phase == INDEXING or raced:
            return
        raced.append(step)
        if meanwhile == "abort":
            platform.app.deploy_keys.abort_rotation(project)
        else:
            platform.app.deploy_keys.start_rotation(project, replace_pending=True)

    with pytest.raises(Conflict) as lost:
        platform.app.deploy_keys.complete_rotation(
            project, on_progress=meanwhile_in_another_process
        )
    assert raced, "the fetch reported no progress, so the race was not run"
    assert lost.value.code == "rotation_changed"
    current = started.rotation.current_key.fingerprint_sha256
    assert _deploy_key(platform, project) == current
    assert _record(platform, current).retired_at is None
    assert platform.fetch(project).skipped  # the old key still works


def test_a_project_with_rotations_can_be_deleted(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    _connect_offline(store, settings, "doomed")
    app = Repolink(settings, store=store)
    app.deploy_keys.start_rotation("doomed")
    app.additional_keys.add_key("doomed", hostname="github.com")

    ProjectService(settings, store).delete_project("doomed")

    with store.session() as session:
        assert session.scalars(select(KeyRotation)).all() == []
        # the pending key's encrypted private half went too: no key outlives its project
        assert session.scalars(select(KeyRecord)).all() == []


def test_disconnect_removes_pending_rotation_keys(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    _connect_offline(store, settings, "loose")
    Repolink(settings, store=store).deploy_keys.start_rotation("loose")

    Repolink(settings, store=store).connections.disconnect("loose")

    with store.session() as session:
        assert session.scalars(select(KeyRecord)).all() == []


def test_rotation_key_ids_name_every_key_a_connection_had(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.connect("ids", hosted.app.url(), grant_on="app")
    started = platform.app.deploy_keys.start_rotation("ids")
    hosted.host.service.add_access_key(
        WORKSPACE, "app", started.rotation.new_key.public_key, label="ids B"
    )
    completed = platform.app.deploy_keys.complete_rotation("ids")
    pending = platform.app.deploy_keys.start_rotation("ids")
    with platform.store.session() as session:
        ids = rotation_key_ids(session, completed.fetch.connection_id)
    assert set(ids) == {
        completed.retired_key.id,
        completed.deploy_key.id,
        pending.rotation.new_key.id,
    }


# --- the inventory -----------------------------------------------------------------------------


def _connect_offline(store: Store, settings: Settings, slug: str) -> str:
    """A connection saved without fetching; its deploy key's record id."""
    ProjectService(settings, store).create_project(slug, slug=slug)
    with store.session() as session:
        info = create_connection(
            session,
            load_vault(settings),
            slug,
            parse_connection_url(f"git@example.invalid:team/{slug}.git"),
            generate_key(),
            origin=KEY_GENERATED,
        )
    return info.deploy_key.id


def _age(store: Store, record_id: str, *, created: int, used: int | None) -> None:
    now = utcnow()
    with store.session() as session:
        session.execute(
            update(KeyRecord)
            .where(KeyRecord.id == record_id)
            .values(
                created_at=now - timedelta(days=created),
                last_used_at=now - timedelta(days=used) if used is not None else None,
            )
        )


def test_inventory_shows_age_last_use_state_and_the_180_day_flag(
    store: Store, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    old = _connect_offline(store, settings, "old")
    fresh = _connect_offline(store, settings, "fresh")
    _age(store, old, created=200, used=3)
    _age(store, fresh, created=10, used=None)

    keys = {key.id: key for key in Repolink(settings, store=store).keys.list_keys()}

    assert keys[old].project == "old" and keys[old].use == "deploy key"
    assert keys[old].age_days == 200 and keys[old].days_since_use == 3
    assert keys[old].rotate_due and keys[old].flags == (ROTATE_FLAG,)
    assert keys[fresh].age_days == 10 and keys[fresh].last_used_at is None
    assert not keys[fresh].rotate_due and keys[fresh].flags == ()
    assert {key.state for key in keys.values()} == {"active"}
    shown = keys[old].as_dict()
    assert shown["flags"] == ["rotate: older than 180 days"]
    assert "private" not in json.dumps(shown).lower()


def test_a_retired_key_is_not_flagged_for_rotation(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    record_id = _connect_offline(store, settings, "gone")
    _age(store, record_id, created=400, used=200)
    with store.session() as session:
        session.execute(
            update(KeyRecord).where(KeyRecord.id == record_id).values(retired_at=utcnow())
        )
    (key,) = Repolink(settings, store=store).keys.list_keys()
    assert key.state == "retired" and not key.rotate_due


def test_unused_lists_keys_not_used_in_so_many_days(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    used_long_ago = _connect_offline(store, settings, "stale")
    used_lately = _connect_offline(store, settings, "busy")
    never_used_old = _connect_offline(store, settings, "forgotten")
    never_used_new = _connect_offline(store, settings, "brand-new")
    _age(store, used_long_ago, created=300, used=100)
    _age(store, used_lately, created=300, used=2)
    _age(store, never_used_old, created=60, used=None)
    _age(store, never_used_new, created=5, used=None)

    inventory = Repolink(settings, store=store).keys
    unused_30 = {key.project for key in inventory.list_keys(unused_days=30)}
    unused_90 = {key.project for key in inventory.list_keys(unused_days=90)}
    everything = {key.project for key in inventory.list_keys()}

    assert unused_30 == {"stale", "forgotten"}
    assert unused_90 == {"stale"}
    assert everything == {"stale", "busy", "forgotten", "brand-new"}


def test_keys_of_any_table_tying_a_key_to_a_project_are_listed_with_it(
    store: Store, tmp_path: Path
) -> None:
    """How additional keys (another module's table) appear without a change to the inventory."""
    settings = Settings(data_dir=tmp_path / "data")
    deploy = _connect_offline(store, settings, "deps")
    table = Table(
        "extra_keys",
        Base.metadata,
        Column("id", String(32), primary_key=True),
        Column("project_id", String(32), ForeignKey("projects.id")),
        Column("key_record_id", String(32), ForeignKey("key_records.id")),
    )
    try:
        table.create(store.engine)
        with store.session() as session:
            vault = load_vault(settings)
            record = store_private_key(session, vault, generate_key(), label="github.com")
            project_id = session.execute(text("SELECT id FROM projects")).scalar_one()
            session.execute(
                table.insert().values(id="x" * 32, project_id=project_id, key_record_id=record.id)
            )
            orphan = store_private_key(session, vault, generate_key(), label="lost")
        keys = {key.id: key for key in Repolink(settings, store=store).keys.list_keys()}
    finally:
        Base.metadata.remove(table)

    assert (keys[deploy].project, keys[deploy].use) == ("deps", "deploy key")
    assert (keys[record.id].project, keys[record.id].use) == ("deps", "extra key")
    assert keys[record.id].label == "github.com" and keys[record.id].state == "active"
    assert (keys[orphan.id].project, keys[orphan.id].use) == (None, None)


def test_additional_keys_are_listed_with_their_project(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    _connect_offline(store, settings, "withdeps")
    app = Repolink(settings, store=store)
    added = app.additional_keys.add_key("withdeps", hostname="github.com")
    keys = {key.fingerprint_sha256: key for key in app.keys.list_keys()}
    extra = keys[added.fingerprint_sha256]
    assert (extra.project, extra.use, extra.state) == ("withdeps", "additional key", "active")


def test_negative_unused_days_are_refused(settings: Settings, store: Store) -> None:
    with pytest.raises(ValidationError) as refused:
        Repolink(settings, store=store).keys.list_keys(unused_days=-1)
    assert refused.value.code == "unused_days_invalid"
    assert "--" not in refused.value.message + refused.value.hint


# --- an imported key, and a generated key handed out once ---------------------------------------


def test_rotation_to_an_imported_key(platform: Platform, hosted: HostedRepos) -> None:
    current = generate_key()
    platform.connect("imp", hosted.app.url(), current, grant_on="app")
    deploy_keys = platform.app.deploy_keys
    with pytest.raises(Conflict) as same:
        deploy_keys.start_rotation("imp", key=current)
    assert same.value.code == "rotation_same_key"
    assert deploy_keys.pending_rotation("imp") is None

    mine = granted_key(hosted.host, "app", "imp B")
    started = deploy_keys.start_rotation("imp", key=mine, keep_private_key=True)
    assert started.origin == "imported" and started.as_dict()["origin"] == "imported"
    assert started.private_key is None  # the caller holds an imported key: never handed back
    assert started.rotation.new_key.fingerprint_sha256 == mine.public_key.sha256_fingerprint
    completed = deploy_keys.complete_rotation("imp")
    info = platform.app.connections.connection_info("imp")
    assert info.deploy_key.fingerprint_sha256 == mine.public_key.sha256_fingerprint
    assert info.deploy_key.origin == "imported"
    assert completed.retired_key.fingerprint_sha256 == current.public_key.sha256_fingerprint


def test_a_generated_key_is_kept_for_the_answer_only_when_asked(
    store: Store, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    _connect_offline(store, settings, "keep")
    deploy_keys = Repolink(settings, store=store).deploy_keys
    plain = deploy_keys.start_rotation("keep")
    assert plain.private_key is None and plain.origin == KEY_GENERATED
    kept = deploy_keys.start_rotation("keep", replace_pending=True, keep_private_key=True)
    assert kept.private_key is not None
    assert (
        kept.private_key.public_key.sha256_fingerprint == kept.rotation.new_key.fingerprint_sha256
    )
    for text_form in (repr(kept), str(kept), json.dumps(kept.as_dict())):
        assert "PRIVATE KEY" not in text_form


def test_the_keys_of_one_project(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    deploy = _connect_offline(store, settings, "mine")
    _connect_offline(store, settings, "theirs")
    app = Repolink(settings, store=store)
    added = app.additional_keys.add_key("mine", hostname="github.com")
    pending = app.deploy_keys.start_rotation("mine").rotation.new_key
    keys = app.keys.project_keys("mine")
    assert [(key.id, key.use, key.state) for key in keys] == [
        (deploy, "deploy key", "active"),
        (added.key_record_id, "additional key", "active"),
        (pending.id, "deploy key", "pending"),
    ]
    assert keys[0].public_key.startswith("ssh-ed25519 ")
    assert keys[0].fingerprint_md5.startswith("MD5:")
    assert app.keys.project_keys("theirs")[0].id not in {key.id for key in keys}
    with pytest.raises(NotFound) as unknown:
        app.keys.project_keys("nobody")
    assert unknown.value.code == "project_not_found"
