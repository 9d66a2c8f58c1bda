"""Projects and the platform tables: schema, slugs, deletion of everything a project owns."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select

from repolink.errors import Conflict, NotFound, ValidationError
from repolink.git.mirrors import mirror_path
from repolink.git.progress import parse_progress_line
from repolink.platform.projects import ProjectService, slugify
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.base import Base
from repolink.store.models import KeyRecord
from repolink.store.models import platform as models
from support.platformkit import HostedRepos, Platform, granted_key

pytestmark = pytest.mark.databases

PLATFORM_TABLES = {"projects", "repository_connections", "commits", "refs"}


def test_migration_matches_the_models(store: Store) -> None:
    assert models.Commit.__tablename__ in Base.metadata.tables

    def mine(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) in PLATFORM_TABLES

    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": mine}
        )
        assert compare_metadata(context, Base.metadata) == []
        indexes = {ix["name"] for ix in inspect(connection).get_indexes("commits")}
    assert indexes == {"ix_commits_listing"}


def test_slugs_are_made_checked_and_unique(settings: Settings, store: Store) -> None:
    assert slugify("  My API Server! ") == "my-api-server"
    assert slugify("Café Größe") == "cafe-groe"  # accents dropped, the rest left out
    projects = ProjectService(settings, store)
    made = projects.create_project("API Server")
    assert made.slug == "api-server"
    with pytest.raises(Conflict) as taken:
        projects.create_project("api server")
    assert taken.value.code == "project_exists"
    with pytest.raises(ValidationError) as bad_slug:
        projects.create_project("Whatever", slug="-Bad_Slug")
    assert bad_slug.value.code == "project_slug_invalid"
    with pytest.raises(ValidationError) as bad_name:
        projects.create_project("two\nlines")
    assert bad_name.value.code == "project_name_invalid"
    assert [p.slug for p in projects.list_projects()] == ["api-server"]


def test_deleting_a_project_removes_connection_index_mirror_and_key(
    platform: Platform, hosted: HostedRepos
) -> None:
    outcome = platform.connect("doomed", hosted.other.url(), granted_key(hosted.host, "other", "d"))
    assert outcome.error is None
    mirror = mirror_path(platform.settings, outcome.connection.id)
    assert (mirror / "HEAD").is_file()

    platform.app.projects.delete_project("doomed")

    assert not mirror.exists()
    with platform.store.session() as session:
        for table in (models.RepositoryConnection, models.Commit, models.Ref):
            assert session.scalar(select(func.count()).select_from(table)) == 0
        assert session.get(KeyRecord, outcome.connection.deploy_key.id) is None
    with pytest.raises(NotFound):
        platform.app.projects.delete_project("doomed")


def test_disconnect_keeps_the_project(platform: Platform, hosted: HostedRepos) -> None:
    outcome = platform.connect("loose", hosted.other.url(), granted_key(hosted.host, "other", "l"))
    platform.app.connections.disconnect("loose")

    assert not mirror_path(platform.settings, outcome.connection.id).exists()
    listed = platform.app.projects.list_projects()
    assert [(p.slug, p.connected) for p in listed] == [("loose", False)]
    # … and it can be connected again.
    again = platform.connect(
        "loose", hosted.other.url(), granted_key(hosted.host, "other", "m"), create=False
    )
    assert again.error is None


@pytest.mark.parametrize(
    ("line", "phase", "done", "total", "remote"),
    [
        (
            "Receiving objects:  45% (450/1000), 1.20 MiB | 2.00 MiB/s",
            "Receiving objects",
            450,
            1000,
            False,
        ),
        ("Resolving deltas: 100% (10/10), done.", "Resolving deltas", 10, 10, False),
        ("remote: Counting objects:  33% (1/3)", "Counting objects", 1, 3, True),
        ("remote: Enumerating objects: 37, done.", "Enumerating objects", 37, None, True),
    ],
)
def test_gits_progress_lines_are_read(
    line: str, phase: str, done: int, total: int | None, remote: bool
) -> None:
    progress = parse_progress_line(line)
    assert progress is not None
    assert (progress.phase, progress.done, progress.total, progress.remote) == (
        phase,
        done,
        total,
        remote,
    )


@pytest.mark.parametrize("line", ["From ssh://host/a", " * [new branch] main -> main", ""])
def test_other_stderr_lines_are_not_progress(line: str) -> None:
    assert parse_progress_line(line) is None


def test_project_not_found_names_the_project_and_the_slug_of_a_name(
    settings: Settings, store: Store
) -> None:
    # Issue 10 §1.4: `repolink fetch "Image classifier"` answered "there is no project".
    projects = ProjectService(settings, store)
    projects.create_project("Image classifier")
    with pytest.raises(NotFound) as by_name:
        projects.project_info("Image classifier")
    assert by_name.value.code == "project_not_found"
    assert by_name.value.message == "there is no project with the slug 'Image classifier'"
    assert "has the slug image-classifier" in by_name.value.hint
    assert by_name.value.reason == "name_given"
    assert by_name.value.context["slug"] == "image-classifier"
    with pytest.raises(NotFound) as by_case:
        projects.project_info("image Classifier")
    assert by_case.value.context["slug"] == "image-classifier"
    with pytest.raises(NotFound) as unknown:
        projects.project_info("no-such-thing")
    assert unknown.value.message == "there is no project 'no-such-thing'"
    assert unknown.value.reason is None


@pytest.mark.parametrize(
    "given",
    [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
        "two\nlines",
        "escape \x1b[2J here",
        "x" * 201,
    ],
)
def test_project_not_found_never_echoes_what_may_be_key_material(
    settings: Settings, store: Store, given: str
) -> None:
    with pytest.raises(NotFound) as unknown:
        ProjectService(settings, store).project_info(given)
    error = unknown.value
    assert error.message == "there is no project with the slug given"
    shown = " ".join([error.message, error.hint, repr(error), *error.context.values()])
    assert given not in shown and given[:20] not in shown


def test_rename_keeps_the_slug_and_checks_the_name(platform: Platform) -> None:
    projects = platform.app.projects
    projects.create_project("Old name", slug="renamed")

    renamed = projects.rename_project("renamed", "  New name  ")

    assert (renamed.slug, renamed.name) == ("renamed", "New name")
    assert projects.project_info("renamed").name == "New name"
    with pytest.raises(ValidationError) as invalid:
        projects.rename_project("renamed", "two\nlines")
    assert invalid.value.code == "project_name_invalid"
    with pytest.raises(NotFound):
        projects.rename_project("no-such-project", "Name")
