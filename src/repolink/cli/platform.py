"""``repolink project|repo|fetch|commits|refs``: the platform side, a thin adapter.

Register everything on the root app with :func:`register`. Read commands take ``--json``.
A fetch shows a progress bar fed from git's own progress and ends with how many new commits
arrived. ``repo connect`` prints the deploy key's public half once (the private half never),
then tries the first fetch; when it fails the connection is kept and the command exits
non-zero with the diagnosis and its fix.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from repolink.cli._common import (
    BitsOption,
    JsonOption,
    KeyFileOption,
    KeyTypeOption,
    PassphraseFileOption,
    ProjectArgument,
    check_key_choice,
    console,
    err_console,
    format_when,
    new_table,
    open_app,
    print_json,
    print_table,
    read_private_key,
    single_command_app,
)
from repolink.cli.confirm import YesOption, confirm_or_stop
from repolink.platform.paging import DEFAULT_LIMIT

# Only for annotations: what `project list` or a no-op `fetch` does not run, it does not
# import either (the diagnosis' wording, the host API's httpx, key generation — issue 10 §2).
if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from repolink.git.progress import FetchProgress
    from repolink.platform.commits import CommitInfo
    from repolink.platform.connect import ConnectOutcome, Registration
    from repolink.platform.connections import ConnectionInfo
    from repolink.platform.fetch import FetchResult

log = logging.getLogger(__name__)

INSTRUCTION = (
    "Add this public key as a read-only access key (deploy key) on the repository — "
    "Bitbucket: Repository settings → Access keys; GitHub: Settings → Deploy keys, without "
    "write access — then run: repolink fetch {project}"
)

ShasArgument = Annotated[list[str], typer.Argument(metavar="SHA…", help="Commit SHAs or prefixes.")]


class _DefaultToList(TyperGroup):
    """``repolink commits PROJECT …`` means ``repolink commits list PROJECT …``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


project_app = typer.Typer(help="Projects of the platform.", no_args_is_help=True)
repo_app = typer.Typer(help="A project's repository connection.", no_args_is_help=True)
commits_app = typer.Typer(
    cls=_DefaultToList,
    help="List a project's commits (repolink commits PROJECT …), hide and unhide them.",
    no_args_is_help=True,
)


fetch_app = single_command_app("Fetch a project's repository and index its new commits.")
refs_app = single_command_app("List a project's branches and tags with their tips.")


# -- projects ---------------------------------------------------------------------------------


@project_app.command("create")
def project_create(
    name: Annotated[str, typer.Argument(help="A display name, e.g. 'API server'.")],
    slug: Annotated[
        str | None, typer.Option(help="The slug (default: made from the name).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a project."""
    with open_app() as app:
        info = app.projects.create_project(name, slug=slug)
    if as_json:
        print_json(info.as_dict())
        return
    console.print(f"created project {info.slug} ({info.name})", markup=False)


@project_app.command("list")
def project_list(as_json: JsonOption = False) -> None:
    """List the projects."""
    with open_app() as app:
        projects = app.projects.list_projects()
    if as_json:
        print_json([info.as_dict() for info in projects])
        return
    table = new_table("slug", "name", "repository", "created")
    for info in projects:
        table.add_row(
            info.slug,
            info.name,
            "connected" if info.connected else "—",
            format_when(info.created_at),
        )
    print_table(table)


@project_app.command("delete")
def project_delete(project: ProjectArgument, yes: YesOption = False) -> None:
    """Delete a project with its connection, mirror, commit index and deploy key."""
    with open_app() as app:
        app.projects.project_info(project)  # fails before asking when there is no such project
        confirm_or_stop(f"delete project {project} and its mirror and deploy key", yes=yes)
        app.projects.delete_project(project)
    console.print(f"deleted project {project}", markup=False)


# -- repository connection --------------------------------------------------------------------


HostAPIOption = Annotated[
    str | None,
    typer.Option(
        "--host-api",
        metavar="URL",
        help="The host API: http://HOST:PORT of a repolink host, or an API root such as "
        "https://api.bitbucket.org/2.0 (default: REPOLINK_HOST_API_URL). Its token is "
        "REPOLINK_HOST_API_TOKEN.",
    ),
]


@repo_app.command("connect")
def repo_connect(
    project: ProjectArgument,
    url: Annotated[str, typer.Argument(help="SSH URL: git@host:team/repo.git or ssh://…")],
    generate: Annotated[
        bool, typer.Option("--generate", help="Generate a new deploy key (default ed25519).")
    ] = False,
    key_type: KeyTypeOption = "ed25519",
    bits: BitsOption = None,
    key_path: KeyFileOption = None,
    passphrase_file: PassphraseFileOption = None,
    register_on_host: Annotated[
        bool,
        typer.Option(
            "--register-on-host",
            help="Add the deploy key as a read-only access key through the host's "
            "Bitbucket-shaped API before fetching.",
        ),
    ] = False,
    host_api: HostAPIOption = None,
    as_json: JsonOption = False,
) -> None:
    """Connect PROJECT to a repository with a deploy key, then fetch it once."""
    check_key_choice(generate, key_type, key_path, what="deploy key")
    with open_app() as app:
        imported = read_private_key(key_path, passphrase_file) if key_path is not None else None

        def before_fetch(connection: ConnectionInfo) -> None:
            if not as_json:
                _print_deploy_key(
                    connection, generated=imported is None, instruct=not register_on_host
                )

        with _progress(quiet=as_json) as on_progress:
            outcome = app.connections.connect(
                project,
                url,
                key=imported,
                key_type=key_type,
                bits=bits,
                register_on_host=register_on_host,
                host_api_url=host_api,
                before_fetch=before_fetch,
                on_registered=None if as_json else _print_registered,
                on_progress=on_progress,
            )
    _finish_connect(outcome, as_json=as_json)


@repo_app.command("register")
def repo_register(
    project: ProjectArgument, host_api: HostAPIOption = None, as_json: JsonOption = False
) -> None:
    """Add PROJECT's deploy key (the same key, no new one) as a read-only access key through
    the host's API, then fetch: the retry of a failed --register-on-host.

    The API: --host-api, else the one the connection was registered on, else
    REPOLINK_HOST_API_URL.
    """
    with open_app() as app, _progress(quiet=as_json) as on_progress:
        outcome = app.connections.register(
            project,
            host_api_url=host_api,
            on_registered=None if as_json else _print_registered,
            on_progress=on_progress,
        )
    _finish_connect(outcome, as_json=as_json)


def _print_deploy_key(connection: ConnectionInfo, *, generated: bool, instruct: bool) -> None:
    key = connection.deploy_key
    verb = "generated" if generated else "imported"
    console.print(
        f"saved connection of {connection.project} to {connection.url} "
        f"({verb} {key.key_type} deploy key)",
        markup=False,
    )
    console.print(key.public_key, markup=False)
    console.print(key.fingerprint_sha256, markup=False)
    console.print(key.fingerprint_md5, markup=False)
    if instruct:
        console.print(INSTRUCTION.format(project=connection.project), markup=False)


def _print_registered(registration: Registration) -> None:
    done = "registered as" if registration.added else "already"
    console.print(
        f"{done} a read-only access key of {registration.repository} on {registration.host}; "
        "fetching…",
        markup=False,
    )


def _finish_connect(outcome: ConnectOutcome, *, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "connection": outcome.connection.as_dict(),
                "generated": outcome.generated,
                "registration": (outcome.registration.as_dict() if outcome.registration else None),
                "fetch": outcome.fetch.as_dict() if outcome.fetch else None,
                "error": outcome.error.as_dict() if outcome.error else None,
                "failed_step": outcome.failed_step,
            }
        )
    elif outcome.fetch is not None:
        _print_fetch(outcome.fetch)
    if outcome.error is not None:
        if not as_json:
            err_console.print(_retry_line(outcome), markup=False)
        # The root command prints it as one line and exits with its status.
        raise outcome.error


def _retry_line(outcome: ConnectOutcome) -> str:
    project = outcome.connection.project
    from repolink.platform.connect import STEP_REGISTER

    if outcome.failed_step == STEP_REGISTER:
        return (
            "the connection is saved, but its key is not on the host; fix the cause below, "
            f"then run: repolink repo register {project} (or add the public key above as a "
            f"read-only access key by hand, then run: repolink fetch {project})"
        )
    return f"the connection is saved; fix the cause below, then: repolink fetch {project}"


@repo_app.command("show")
def repo_show(
    project: ProjectArgument,
    public_key: Annotated[
        bool,
        typer.Option(
            "--public-key",
            help="Print only the deploy key's public line, e.g. to pipe into "
            "`repolink host access-key add WS/SLUG - --label PROJECT`.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show the connection: URL, state of the last fetch, deploy key, index size."""
    with open_app() as app:
        info = app.connections.connection_info(project)
    if public_key:
        console.print(info.deploy_key.public_key, markup=False)
        return
    if as_json:
        print_json(info.as_dict())
        return
    key = info.deploy_key
    rows: list[tuple[str, str]] = [
        ("project", info.project),
        ("url", info.url),
        ("state", info.state),
        ("attempted", format_when(info.attempted_at)),
        ("fetched", format_when(info.fetched_at)),
    ]
    if info.error_code:
        from repolink.hints import command_wording

        fix = command_wording(info.error_code, info.error_reason, info.error_context)
        rows += [
            ("error", f"{info.error_code}: {info.error_message}"),
            ("fix", fix or info.error_hint or ""),
        ]
    rows += [
        ("deploy key", f"{key.key_type} ({key.bits} bits, {key.origin})"),
        ("public key", key.public_key),
        ("sha256", key.fingerprint_sha256),
        ("md5", key.fingerprint_md5),
        ("key created", format_when(key.created_at)),
        ("key last used", format_when(key.last_used_at)),
        ("commits", str(info.commits)),
        ("refs", str(info.refs)),
    ]
    if info.poll_interval_minutes is not None:
        rows.append(("polling", f"every {info.poll_interval_minutes} minutes"))
    for label, value in rows:
        console.print(f"{label + ':':<15}{value}", markup=False)


@repo_app.command("poll")
def repo_poll(
    project: ProjectArgument,
    minutes: Annotated[
        int,
        typer.Argument(
            help="Fetch every so many minutes (1 to 1440, ±10 %); 0 turns polling off.",
            show_default=False,
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Poll the repository, for a host that cannot send webhooks: a running `repolink serve`
    fetches it every MINUTES. Off by default."""
    with open_app() as app:
        interval = app.fetch_requests.set_polling(project, minutes)
    if as_json:
        print_json({"project": project, "poll_interval_minutes": interval})
        return
    if interval is None:
        console.print(f"project {project}: polling off", markup=False)
    else:
        console.print(f"project {project}: fetched every {interval} minutes", markup=False)


@repo_app.command("disconnect")
def repo_disconnect(project: ProjectArgument, yes: YesOption = False) -> None:
    """Remove the connection with its mirror, commit index and deploy key."""
    with open_app() as app:
        app.connections.connection_info(project)  # fails before asking when not connected
        confirm_or_stop(f"disconnect project {project} and delete its deploy key", yes=yes)
        app.connections.disconnect(project)
    console.print(f"disconnected project {project}", markup=False)


# -- fetch ------------------------------------------------------------------------------------


@fetch_app.callback(invoke_without_command=True)
def fetch_command(project: ProjectArgument, as_json: JsonOption = False) -> None:
    """Fetch the project's repository into its mirror and index the new commits."""
    # The no-op shortcut (RefreshService.unchanged) was tried before the command tree was
    # built (repolink.cli.quick): here the fetch service decides, without trying it again.
    with open_app() as app, _progress(quiet=as_json) as on_progress:
        result = app.fetches.fetch_project(project, on_progress=on_progress)
    if as_json:
        print_json(result.as_dict())
        return
    _print_fetch(result)


def _print_fetch(result: FetchResult) -> None:
    for line in result.summary_lines():
        console.print(line, markup=False)


@contextmanager
def _progress(*, quiet: bool) -> Iterator[Any]:
    """A Rich progress bar on stderr fed by :class:`FetchProgress` updates (or nothing).

    It appears with the first update, so a command that fails before fetching prints none,
    and one that finds nothing to fetch does not even import it.
    """
    if quiet:
        yield None
        return
    bars: Progress | None = None
    tasks: dict[str, TaskID] = {}
    lock = threading.Lock()

    def update(step: FetchProgress) -> None:
        nonlocal bars
        name = f"remote: {step.phase}" if step.remote else step.phase
        of = f"/{step.total}" if step.total is not None else ""
        with lock:
            if bars is None:
                bars = _new_progress_bars()
                bars.start()
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=step.total, of=of)
            bars.update(tasks[name], completed=step.done, total=step.total, of=of)

    try:
        yield update
    finally:
        with lock:
            if bars is not None:
                bars.stop()


def _new_progress_bars() -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description:<26}"),
        BarColumn(),
        TextColumn("{task.completed:>8.0f}{task.fields[of]}"),
        console=err_console,
        transient=False,
    )


# -- commits and refs -------------------------------------------------------------------------


@commits_app.command("list")
def commits_list(
    project: ProjectArgument,
    ref: Annotated[
        str | None, typer.Option("--ref", help="Only commits reachable from this branch or tag.")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="SHA prefix or text in the subject.")
    ] = None,
    include_hidden: Annotated[
        bool, typer.Option("--include-hidden", help="List hidden commits too.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="Commits per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after a previous page.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List commits, newest first (the default command: repolink commits PROJECT)."""
    with open_app() as app:
        page = app.commits.list_commits(
            project,
            ref=ref,
            search=search,
            include_hidden=include_hidden,
            limit=limit,
            cursor=cursor,
        )
    if as_json:
        print_json(page.as_dict())
        return
    table = new_table("sha", "committed", "author", "subject", "refs")
    for commit in page.commits:
        table.add_row(*_commit_cells(commit))
    print_table(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", markup=False)


def _commit_cells(commit: CommitInfo) -> list[str]:
    subject = f"[hidden] {commit.subject}" if commit.hidden else commit.subject
    refs = ", ".join(name.split("/", 2)[-1] for name in commit.refs)
    return [commit.short_sha, format_when(commit.commit_time), commit.author_name, subject, refs]


@commits_app.command("hide")
def commits_hide(
    project: ProjectArgument,
    shas: ShasArgument,
) -> None:
    """Hide commits from the listings (refs still show every tip)."""
    with open_app() as app:
        done = app.commits.hide_commits(project, shas)
    for sha in done:
        console.print(f"hidden {sha}", markup=False)


@commits_app.command("unhide")
def commits_unhide(
    project: ProjectArgument,
    shas: ShasArgument,
) -> None:
    """Show hidden commits again."""
    with open_app() as app:
        done = app.commits.unhide_commits(project, shas)
    for sha in done:
        console.print(f"unhidden {sha}", markup=False)


@refs_app.callback(invoke_without_command=True)
def refs_command(project: ProjectArgument, as_json: JsonOption = False) -> None:
    """List branches and tags with their tip commits."""
    with open_app() as app:
        refs = app.commits.list_refs(project)
    if as_json:
        print_json([ref.as_dict() for ref in refs])
        return
    table = new_table("kind", "name", "commit", "committed", "subject")
    for ref in refs:
        subject = ref.subject or ""
        if ref.hidden:
            subject = f"[hidden] {subject}"
        table.add_row(
            ref.kind, ref.short_name, ref.commit_sha[:12], format_when(ref.commit_time), subject
        )
    print_table(table)


# -- input ------------------------------------------------------------------------------------
