"""The built-in host behind one address (issue 13 §3): two ``repolink serve --no-workers``
processes, each on a data directory of its own, sharing one PostgreSQL database and one host
storage (``REPOLINK_HOST_STORAGE``), started at once.

A repository created and an access key added through A's host API, pushed to over B's SSH host
and cloned over A's: the clone has the commit. Both present the same SSH host keys — created by
whichever started first — and a real ``ssh`` checking one known_hosts file (A's keys) reaches
both.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from repolink.ssh.server_keys import HOST_KEY_FILES, SHARED_KEYS_DIR
from support.flowkit import HOST_API, api_client, ok, printed_host_keys, scanned_known_hosts
from support.hostkit import GitClient, generate_key_pair, make_source_repository
from support.servekit import drain_output, serving_services

TOKEN = "shared-storage-admin-token"


def test_two_hosts_on_one_storage_serve_the_same_repositories_with_the_same_host_keys(
    tmp_path: Path, postgres_url: str
) -> None:
    storage = tmp_path / "shared-storage"
    storage.mkdir()
    settings = {
        "REPOLINK_DATABASE_URL": postgres_url,
        "REPOLINK_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        "REPOLINK_ADMIN_TOKEN": TOKEN,
        "REPOLINK_HOST_STORAGE": str(storage),
        "REPOLINK_SHUTDOWN_GRACE": "1",
    }
    data_dirs = [tmp_path / "data-a", tmp_path / "data-b"]
    with serving_services(data_dirs, settings, args=["--no-workers"]) as (a, b):
        for name, service in (("a", a), ("b", b)):
            drain_output(service, tmp_path / f"serve-{name}.log")
        # Both started together, so both may have made keys: one set was linked into place
        # and both serve it; no candidate written aside is left behind.
        assert len(printed_host_keys(a)) == 2 and printed_host_keys(a) == printed_host_keys(b)
        assert sorted(path.name for path in (storage / SHARED_KEYS_DIR).iterdir()) == sorted(
            HOST_KEY_FILES
        )
        for data_dir in data_dirs:
            assert not (data_dir / "host" / "ssh_host_ed25519_key").exists()

        writer = generate_key_pair(tmp_path / "keys", "writer")
        with api_client(a, TOKEN) as api:
            ok(api.post(f"{HOST_API}/repositories/acme/widgets", json={}), 200, 201)
            added = api.post(
                f"{HOST_API}/repositories/acme/widgets/deploy-keys",
                json={"key": writer.public_line, "label": "ci", "read_only": False},
            )
            ok(added, 200, 201)
        [created] = list(storage.glob("*.git"))

        # One known_hosts file, A's keys as ssh-keyscan sees them, for both addresses.
        known_hosts = scanned_known_hosts(a, tmp_path / "known_hosts")
        lines = known_hosts.read_text().splitlines()
        as_b = [line.replace(f"]:{a.ssh_port} ", f"]:{b.ssh_port} ") for line in lines]
        assert as_b != lines
        known_hosts.write_text("\n".join([*lines, *as_b]) + "\n")
        through_b = GitClient(tmp_path / "home", writer, known_hosts, b.ssh_port or 0)
        work = tmp_path / "work"
        [*_, pushed] = make_source_repository(work, through_b.env(), commits=2)
        push = through_b.git("push", through_b.url("acme/widgets.git"), "main", cwd=work)
        assert push.returncode == 0, push.stderr

        through_a = GitClient(tmp_path / "home", writer, known_hosts, a.ssh_port or 0)
        copy = tmp_path / "clone"
        clone = through_a.git("clone", "-q", through_a.url("acme/widgets.git"), str(copy))
        assert clone.returncode == 0, clone.stderr
        head = subprocess.run(
            ["git", "-C", str(copy), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert head == pushed
        assert (created / "refs" / "heads" / "main").read_text().strip() == pushed
