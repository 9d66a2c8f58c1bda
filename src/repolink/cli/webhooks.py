"""``repolink webhooks show|rotate-secret``: a project's incoming webhooks, on the local data
directory (as its site admin, like every command without a server).

``show`` lists the receiver of each provider, whether the project has a secret, and the
deliveries received; the secret itself only with ``--reveal-secret`` (which makes one if there
is none yet). ``rotate-secret`` makes a new secret and prints it once; the old one stops
verifying at once, so every forge's webhook must be given the new one.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from repolink.auth.principal import LOCAL_ADMIN
from repolink.cli._common import (
    JsonOption,
    ProjectArgument,
    console,
    err_console,
    format_when,
    new_table,
    open_app,
    print_json,
    print_table,
)
from repolink.cli.confirm import YesOption, confirm_or_stop
from repolink.errors import ValidationError

log = logging.getLogger(__name__)

app = typer.Typer(
    help="A project's incoming webhooks: receiver URLs, secret, deliveries received.",
    no_args_is_help=True,
)

BaseURLOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        metavar="URL",
        help="The server's address as forges reach it (https://repolink.example.com): "
        "print absolute receiver URLs instead of paths.",
    ),
]
DEFAULT_SHOWN = 20
MAX_SHOWN = 200


@app.command("show")
def show_command(
    project: ProjectArgument,
    base_url: BaseURLOption = None,
    reveal_secret: Annotated[
        bool,
        typer.Option(
            "--reveal-secret", help="Print the secret (made now if the project has none)."
        ),
    ] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_SHOWN, help="How many recent deliveries to list.")
    ] = DEFAULT_SHOWN,
    as_json: JsonOption = False,
) -> None:
    """Show the project's webhook URLs, whether it has a secret, and recent deliveries."""
    from repolink.platform.webhooks_in import receiver_paths

    prefix = _checked_base(base_url)
    with open_app() as application:
        service = application.webhooks_in
        # The deliveries first: they name a missing project before a secret would be made.
        deliveries = service.deliveries(project, limit=limit)
        secret = None
        if reveal_secret:
            made = service.secret(project)
            if made.new:
                application.audit.record(LOCAL_ADMIN, "webhook_secret.create", project=project)
            secret = made.value
        secret_set = secret is not None or service.has_secret(project)
    urls = {name: prefix + path for name, path in receiver_paths(project).items()}
    if as_json:
        print_json(
            {
                "project": project,
                "urls": urls,
                "secret": secret,
                "secret_set": secret_set,
                "deliveries": [delivery.as_dict() for delivery in deliveries],
            }
        )
        return
    for provider, url in urls.items():
        console.print(f"{provider + ':':<18}{url}", markup=False)
    if secret is not None:
        console.print(f"{'secret:':<18}{secret}", markup=False)
    elif secret_set:
        console.print(f"{'secret:':<18}set (print it with --reveal-secret)", markup=False)
    else:
        console.print(
            f"{'secret:':<18}none yet: every delivery is refused until one is made "
            "(--reveal-secret makes it)",
            markup=False,
        )
    if not deliveries:
        console.print("no deliveries received", markup=False)
        return
    table = new_table("received", "provider", "event", "delivery id", "outcome", "fetch")
    for delivery in deliveries:
        table.add_row(
            format_when(delivery.received_at),
            delivery.provider,
            delivery.event or "—",
            delivery.delivery_id or "—",
            delivery.outcome,
            delivery.fetch_run_id or "—",
        )
    print_table(table)


@app.command("rotate-secret")
def rotate_secret_command(
    project: ProjectArgument, yes: YesOption = False, as_json: JsonOption = False
) -> None:
    """Make a new webhook secret and print it once; the old one stops verifying at once."""
    with open_app() as application:
        service = application.webhooks_in
        service.deliveries(project, limit=1)  # names a missing project before asking
        confirm_or_stop(
            f"replace the webhook secret of project {project} (every forge's webhook must then "
            "be given the new one)",
            yes=yes,
        )
        secret = service.regenerate_secret(project)
        application.audit.record(LOCAL_ADMIN, "webhook_secret.rotate", project=project)
    if as_json:
        print_json({"project": project, "secret": secret.value})
        return
    console.print(secret.value, markup=False)
    err_console.print(
        f"new webhook secret of project {project}: give it to every forge's webhook",
        markup=False,
    )


def _checked_base(base_url: str | None) -> str:
    if base_url is None:
        return ""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValidationError(
            "base_url_invalid",
            "the base URL is not an http:// or https:// address",
            "give the server's address as forges reach it, like https://repolink.example.com",
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
