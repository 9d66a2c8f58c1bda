"""``repolink info``: which data directory and database this environment uses, and what they
hold — the first thing to look at when a command cannot find what an earlier one made."""

from __future__ import annotations

from repolink.cli._common import JsonOption, console, open_app, print_json, single_command_app
from repolink.errors import RepolinkError
from repolink.settings import load_settings

info_app = single_command_app(
    "Show the data directory, host storage and database in use, and what they hold."
)


@info_app.callback(invoke_without_command=True)
def info_command(as_json: JsonOption = False) -> None:
    """Show the version, the data directory, the built-in host's storage, the database (without
    its password) and how many projects, workspaces and host repositories it holds."""
    from repolink import __version__
    from repolink.store.inventory import take_inventory

    with open_app() as app:
        inventory = take_inventory(app.store)
        facts = {
            "version": __version__,
            "data_dir": str(app.settings.resolved_data_dir),
            "host_storage": str(app.settings.resolved_host_storage),
            "database": app.store.url,
            "projects": inventory.projects,
            "workspaces": inventory.workspaces,
            "repositories": inventory.repositories,
        }
    if as_json:
        print_json(facts)
        return
    labels = {
        "data_dir": "data directory",
        "host_storage": "host storage",
        "repositories": "host repositories",
    }
    for name, value in facts.items():
        console.print(f"{labels.get(name, name)}: {value}", markup=False)


def empty_store_note() -> str | None:
    """Where nothing exists yet, when the store this environment reads is empty: a not-found
    error there most often means the command read another data directory than the one the
    earlier commands wrote (another working directory, another ``REPOLINK_DATA_DIR``)."""
    from repolink.store import Store
    from repolink.store.inventory import take_inventory

    try:
        settings = load_settings()
        if settings.database_url is None and not settings.resolved_data_dir.exists():
            place = f"data directory {settings.resolved_data_dir}"
        else:
            with Store.open(settings) as store:
                if not take_inventory(store).is_empty:
                    return None
                place = (
                    f"database {store.url}"
                    if settings.database_url
                    else f"data directory {settings.resolved_data_dir}"
                )
    except RepolinkError:  # the error being reported matters more than this note
        return None
    return f"(the {place} holds no projects or repositories yet)"
