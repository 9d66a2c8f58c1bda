"""``repolink admin …``: operator tasks on the data directory — master keys and migrations."""

from __future__ import annotations

import logging

import typer

from repolink.admin import reencrypt_with_current_key, rotate_secret_key
from repolink.cli._common import console
from repolink.settings import load_settings
from repolink.store import Store

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Operator tasks: master key rotation, database migrations.",
    no_args_is_help=True,
)


@app.command("rotate-secret-key")
def rotate_secret_key_command() -> None:
    """Add a new master key version and re-encrypt every stored secret with it."""
    settings = load_settings()
    with Store.open(settings) as store:
        rotation = rotate_secret_key(store, settings)
    console.print(
        f"master key version {rotation.version}; re-encrypted {rotation.reencrypted} secrets",
        markup=False,
    )


@app.command("reencrypt")
def reencrypt_command() -> None:
    """Re-encrypt stored secrets with the newest master key (after adding one by hand)."""
    settings = load_settings()
    with Store.open(settings) as store:
        rotation = reencrypt_with_current_key(store, settings)
    console.print(
        f"master key version {rotation.version}; re-encrypted {rotation.reencrypted} secrets",
        markup=False,
    )


@app.command("migrate")
def migrate_command() -> None:
    """Migrate the database to the newest schema (every command also does this on start)."""
    settings = load_settings()
    with Store.open(settings) as store:
        revision = store.current_revision()
        where = store.url
    console.print(f"database {where} at revision {revision}", markup=False)
