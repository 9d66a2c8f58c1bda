"""``repolink admin …``: operator tasks on the data directory — master keys and migrations."""

from __future__ import annotations

import logging

import typer

from repolink.admin import MasterKeyRotation
from repolink.cli._common import console, open_app

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Operator tasks: master key rotation, database migrations.",
    no_args_is_help=True,
)


@app.command("rotate-secret-key")
def rotate_secret_key_command() -> None:
    """Add a new master key version and re-encrypt every stored secret with it."""
    with open_app() as app:
        _print_rotation(app.admin.rotate_secret_key())


@app.command("reencrypt")
def reencrypt_command() -> None:
    """Re-encrypt stored secrets with the newest master key (after adding one by hand)."""
    with open_app() as app:
        _print_rotation(app.admin.reencrypt_with_current_key())


@app.command("migrate")
def migrate_command() -> None:
    """Migrate the database to the newest schema (every command also does this on start)."""
    with open_app() as app:
        revision = app.store.current_revision()
        where = app.store.url
    console.print(f"database {where} at revision {revision}", markup=False)


def _print_rotation(rotation: MasterKeyRotation) -> None:
    console.print(
        f"master key version {rotation.version}; re-encrypted {rotation.reencrypted} secrets",
        markup=False,
    )
