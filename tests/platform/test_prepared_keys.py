"""Prepared deploy keys: generate the key first, add it as an access key, then save the URL
(the Valohai article's order) — the connection uses that very key and its first fetch
succeeds; a connection saved with a key of its own drops the prepared one; generating again
replaces it; deleting the project deletes it."""

from __future__ import annotations

from sqlalchemy import func, select

from repolink.keys import parse_private_key
from repolink.platform.key_inventory import KeyService
from repolink.store.models import KeyRecord
from repolink.store.models.prepared_keys import PreparedDeployKey
from support.platformkit import WORKSPACE, HostedRepos, Platform, granted_key


def _count(platform: Platform, model: type) -> int:
    with platform.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_generate_first_then_save_uses_the_key_and_fetches(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.project("first")
    connections = platform.app.connections
    assert connections.prepared_key("first") is None

    prepared = connections.prepare_key("first", key_type="ecdsa")
    assert prepared.private_key is not None and "PRIVATE" not in repr(prepared)
    line = prepared.key.public_key
    assert line.startswith("ecdsa-sha2-nistp256 ")
    again = connections.prepared_key("first")
    assert again is not None and again.key == prepared.key and again.private_key is None
    private = parse_private_key(prepared.private_key.to_openssh()).key
    assert private.public_key.openssh_line(False) in line
    # The key is an access key of the repository before the platform knows the URL.
    hosted.host.service.add_access_key(WORKSPACE, "app", line, label="first")

    saved = connections.save("first", hosted.app.url())

    assert saved.prepared and saved.private_key is None
    key = saved.connection.deploy_key
    assert (key.id, key.fingerprint_sha256, key.origin) == (
        prepared.key.id,
        prepared.key.fingerprint_sha256,
        "generated",
    )
    assert connections.prepared_key("first") is None
    assert _count(platform, PreparedDeployKey) == 0
    assert platform.fetch("first").new_commits == len(hosted.app.host_commits())
    assert connections.connection_info("first").state == "ok"


def test_connect_uses_the_prepared_key_too(platform: Platform, hosted: HostedRepos) -> None:
    platform.project("cli-first")
    prepared = platform.app.connections.prepare_key("cli-first")
    hosted.host.service.add_access_key(WORKSPACE, "app", prepared.key.public_key, label="cli")

    outcome = platform.app.connections.connect("cli-first", hosted.app.url())

    assert outcome.error is None, outcome.error
    assert outcome.connection.deploy_key.id == prepared.key.id
    assert outcome.generated


def test_generating_again_replaces_and_another_key_drops_it(
    platform: Platform, hosted: HostedRepos
) -> None:
    platform.project("again")
    connections = platform.app.connections
    before = _count(platform, KeyRecord)
    first = connections.prepare_key("again")
    second = connections.prepare_key("again")
    assert first.key.id != second.key.id
    assert _count(platform, KeyRecord) == before + 1  # the first one's record is gone
    prepared = connections.prepared_key("again")
    assert prepared is not None and prepared.key.id == second.key.id
    # Listed in the key inventory as the project's.
    listed = {key.fingerprint_sha256 for key in KeyService(platform.store).project_keys("again")}
    assert second.key.fingerprint_sha256 in listed

    saved = connections.save("again", hosted.app.url(), key=granted_key(hosted.host, "app", "a"))

    assert not saved.prepared and saved.connection.deploy_key.origin == "imported"
    assert connections.prepared_key("again") is None
    assert _count(platform, KeyRecord) == before + 1  # the imported key only


def test_deleting_the_project_deletes_its_prepared_key(platform: Platform) -> None:
    platform.project("gone")
    before = _count(platform, KeyRecord)
    platform.app.connections.prepare_key("gone")
    platform.app.projects.delete_project("gone")
    assert _count(platform, KeyRecord) == before
    assert _count(platform, PreparedDeployKey) == 0
