"""``repolink keys``: generate a key pair, inspect (and diagnose) a key; list and rotate the
platform's stored keys.

A thin adapter over :mod:`repolink.keys` and the application's key services
(:mod:`repolink.platform.key_inventory`, :mod:`repolink.platform.rotation`). It never prints a
private key: ``generate`` writes it to a file created 0600 (never over an existing one);
``inspect``, ``list`` and ``rotate`` show only facts about keys and their public halves. The
application (and the database) is opened inside ``list`` and ``rotate`` only, so ``generate``
and ``inspect`` stay quick.
"""

from __future__ import annotations

import errno
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from repolink.auth.principal import LOCAL_ADMIN
from repolink.cli._common import (
    KeyFileOption,
    PassphraseFileOption,
    console,
    err_console,
    new_table,
    open_app,
    print_json,
    print_table,
    read_key_input,
    read_passphrase_file,
    read_private_key,
)
from repolink.errors import Conflict, RepolinkError, ValidationError
from repolink.keys import (
    ParsedPrivateKey,
    ParsedPublicKey,
    PrivateKey,
    generate_key,
    parse_key,
)

if TYPE_CHECKING:
    from repolink.platform.key_inventory import KeyStatus
    from repolink.platform.rotation import KeyFacts, OnHost, RotationCompleted, RotationStarted

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Generate SSH key pairs and inspect keys (repairing common paste mistakes); list and "
    "rotate the platform's keys.",
    no_args_is_help=True,
    add_completion=False,
)

_FORMATS = ("openssh", "pem")

ADD_ACCESS_KEY_INSTRUCTION = (
    "Add this public key as a read-only access key (deploy key) on the repository, next to the "
    "current one — Bitbucket: Repository settings → Access keys; GitHub: Settings → Deploy "
    "keys, without write access — then run: repolink keys rotate {project} --complete"
)


@app.command()
def generate(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Private key file to create (required); PATH.pub beside it."),
    ] = None,
    key_type: Annotated[
        str, typer.Option("--type", help="ed25519 (default), rsa or ecdsa.")
    ] = "ed25519",
    bits: Annotated[
        int | None,
        typer.Option(help="RSA: 2048, 3072 (default), 4096. ECDSA: 256 (default), 384, 521."),
    ] = None,
    comment: Annotated[
        str, typer.Option(help="Comment stored in both files, as ssh-keygen -C does.")
    ] = "",
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            help="Protect the private key with the passphrase held in this file "
            "(bcrypt KDF and aes256-ctr, as ssh-keygen)."
        ),
    ] = None,
    key_format: Annotated[
        str,
        typer.Option("--format", help="openssh (default), or pem for classic PEM (RSA/ECDSA)."),
    ] = "openssh",
) -> None:
    """Generate a key pair: PATH (private, 0600) and PATH.pub (public, 0644)."""
    if out is None:
        raise ValidationError(
            "key_out_required",
            "no file to write the private key to",
            "add --out PATH, e.g. --out ./deploy_key",
        )
    if key_format not in _FORMATS:
        raise ValidationError(
            "key_format_unknown",
            "the key file format must be openssh or pem",
            "use --format openssh (default) or --format pem",
        )
    passphrase = read_passphrase_file(passphrase_file) if passphrase_file is not None else None
    if passphrase == b"":
        # Before the key is made: an RSA key takes seconds to generate.
        raise ValidationError(
            "key_passphrase_empty",
            f"the passphrase file {passphrase_file} is empty; an empty passphrase cannot "
            "protect a key",
            "write the passphrase into that file, or leave --passphrase-file out for a key "
            "without one",
        )
    public_path = out.with_name(out.name + ".pub")
    for path in (out, public_path):
        if os.path.lexists(path):
            raise _exists(path)
    key = generate_key(key_type, bits, comment)
    private_bytes = key.to_pem(passphrase) if key_format == "pem" else key.to_openssh(passphrase)
    _write_pair(out, private_bytes, public_path, key)
    public = key.public_key
    protected = ", passphrase-protected" if passphrase is not None else ""
    console.print(
        f"wrote {out} (private, 0600{protected}) and {public_path} (public, 0644)", markup=False
    )
    console.print(public.openssh_line(), markup=False)
    console.print(public.sha256_fingerprint, markup=False)
    console.print(public.md5_fingerprint, markup=False)


def _write_pair(
    private_path: Path, private_bytes: bytes, public_path: Path, key: PrivateKey
) -> None:
    _create(private_path, private_bytes, 0o600)
    try:
        _create(public_path, (key.public_key.openssh_line() + "\n").encode("utf-8"), 0o644)
    except BaseException:
        # Half a key pair is worse than none: do not leave the private file behind.
        private_path.unlink(missing_ok=True)
        raise


def _create(path: Path, data: bytes, mode: int) -> None:
    """Write a new file with exactly ``mode``; refuse to replace or follow anything there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away (0644 for the .pub)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise _unwritable(path, exc) from None
    os.close(fd)


def _exists(path: Path) -> Conflict:
    return Conflict(
        "key_file_exists",
        f"{path} exists already; repolink never overwrites a key file",
        "choose another --out path, or move the old files away first",
    )


def _unwritable(path: Path, exc: OSError) -> ValidationError:
    reason = os.strerror(exc.errno) if exc.errno else "cannot be written"
    if exc.errno == errno.ENOENT:
        reason = "its directory does not exist"
    return ValidationError(
        "key_file_unwritable",
        f"cannot create {path}: {reason}",
        "choose a path in an existing directory you can write to",
    )


@app.command()
def inspect(
    path: Annotated[str, typer.Argument(help="Key file to read, or - for standard input.")],
    passphrase_file: Annotated[
        Path | None,
        typer.Option(help="File holding the passphrase of a protected private key."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show kind, type, size, fingerprints, comment and public line of a key; never the key."""
    data = read_key_input(path)
    passphrase = read_passphrase_file(passphrase_file) if passphrase_file is not None else None
    parsed = parse_key(data, passphrase)
    report = _report(parsed)
    if as_json:
        print_json(report)
        return
    for label in ("kind", "type", "bits", "sha256", "md5", "comment", "public_key"):
        _print_field(label, str(report[label]))
    _print_field("repairs", "; ".join(parsed.repairs) if parsed.repairs else "none")


def _report(parsed: ParsedPrivateKey | ParsedPublicKey) -> dict[str, object]:
    public = parsed.key.public_key if isinstance(parsed, ParsedPrivateKey) else parsed.key
    return {
        "kind": parsed.kind,
        "type": public.key_type,
        "bits": public.bits,
        "sha256": public.sha256_fingerprint,
        "md5": public.md5_fingerprint,
        "comment": public.comment,
        "public_key": public.openssh_line(),
        "repairs": list(parsed.repairs),
    }


def _print_field(label: str, value: str) -> None:
    line = Text(f"{label + ':':<12}", style="bold")
    line.append(value)
    console.print(line)


# -- the platform's keys: inventory and rotation ---------------------------------------------

_STATE_NAMES = {"active": "active", "pending": "pending rotation", "retired": "retired"}


@app.command("list")
def list_command(
    unused: Annotated[
        int | None,
        typer.Option(
            "--unused",
            metavar="DAYS",
            min=0,
            help="Only keys not used in DAYS days (a key never used counts from its creation).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """List the platform's keys: project, age, last successful use, state; old keys flagged."""
    with open_app() as application:
        keys = application.keys.list_keys(unused_days=unused)
    if as_json:
        print_json([key.as_dict() for key in keys])
        return
    if not keys:
        console.print("no keys" if unused is None else f"no key unused for {unused} days")
        return
    table = new_table("project", "label", "type", "sha256", "age", "last used", "state", "note")
    for key in keys:
        table.add_row(*_key_cells(key))
    print_table(table)


def _key_cells(key: KeyStatus) -> list[str]:
    if key.last_used_at is None:
        last_used = "never"
    else:
        last_used = f"{_day(key.last_used_at)} ({key.days_since_use} d ago)"
    return [
        key.project or "—",
        key.label,
        key.key_type,
        key.fingerprint_sha256,
        f"{key.age_days} d",
        last_used,
        _STATE_NAMES.get(key.state, key.state),
        "; ".join(key.flags),
    ]


@app.command("rotate")
def rotate_command(
    project: Annotated[str, typer.Argument(metavar="PROJECT", help="The project's slug.")],
    complete: Annotated[
        bool,
        typer.Option(
            "--complete",
            help="Fetch with the pending key; if that works, make it the deploy key and retire "
            "the old one (its private half is erased).",
        ),
    ] = False,
    abort: Annotated[bool, typer.Option("--abort", help="Discard the pending key.")] = False,
    replace_pending: Annotated[
        bool,
        typer.Option("--replace-pending", help="Discard a pending key and make another one."),
    ] = False,
    key_type: Annotated[
        str | None, typer.Option("--type", help="The new key: ed25519 (default), rsa or ecdsa.")
    ] = None,
    bits: Annotated[int | None, typer.Option(help="RSA 2048/3072/4096, ECDSA 256/384/521.")] = None,
    key_path: KeyFileOption = None,
    passphrase_file: PassphraseFileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Rotate PROJECT's deploy key with overlap: new key pending, proven by a fetch, then swapped.

    Without options: make a new key (or take the one of --key) and print its public half to add
    to the repository; the current key keeps working. Then --complete (or --abort).
    """
    chosen = [name for name, on in (("--complete", complete), ("--abort", abort)) if on]
    making = key_type is not None or bits is not None
    importing = key_path is not None or passphrase_file is not None
    if len(chosen) > 1 or (chosen and (replace_pending or making or importing)):
        raise ValidationError(
            "rotate_options_conflict",
            "--complete and --abort go alone; --type, --bits, --key and --replace-pending start "
            "a rotation",
            f"start with: repolink keys rotate {project} [--type …], then finish with "
            f"--complete or --abort",
        )
    if making and key_path is not None:
        raise ValidationError(
            "key_choice_required",
            "--key imports a key; --type and --bits make a new one",
            "give --key FILE alone, or --type/--bits without --key",
        )
    if passphrase_file is not None and key_path is None:
        raise ValidationError(
            "passphrase_without_key",
            "a passphrase file was given, but no private key to unlock",
            "add --key FILE, or leave out --passphrase-file",
        )
    imported = read_private_key(key_path, passphrase_file) if key_path is not None else None
    # Here, not at the top: only a rotation loads the services the audit wording names.
    from repolink.accounts import key_audit

    with open_app() as application:
        deploy_keys = application.deploy_keys
        if abort:
            aborted = deploy_keys.abort_rotation(project)
            key_audit.rotation_aborted(application.audit, LOCAL_ADMIN, aborted)
            if as_json:
                print_json(aborted.as_dict())
            else:
                console.print(
                    f"discarded the pending key {aborted.discarded.fingerprint_sha256}; "
                    "the deploy key is unchanged",
                    markup=False,
                )
                _print_removed(aborted.on_host, aborted.discarded, "discarded")
            return
        if complete:
            pending = deploy_keys.pending_rotation(project)
            try:
                completed = deploy_keys.complete_rotation(project)
            except RepolinkError:
                if pending is not None and not as_json:
                    err_console.print(
                        f"the new key {pending.new_key.fingerprint_sha256} did not work; nothing "
                        f"changed: {pending.current_key.fingerprint_sha256} stays the deploy key "
                        "and the new key stays pending; fix the cause below, then run "
                        f"`repolink keys rotate {project} --complete` again",
                        markup=False,
                    )
                raise
            key_audit.rotation_completed(application.audit, LOCAL_ADMIN, completed)
            _print_completed(completed, as_json=as_json)
            return
        started = deploy_keys.start_rotation(
            project,
            key=imported,
            key_type=key_type or "ed25519",
            bits=bits,
            replace_pending=replace_pending,
        )
        key_audit.rotation_started(application.audit, LOCAL_ADMIN, started)
    _print_started(started, as_json=as_json)


def _print_started(started: RotationStarted, *, as_json: bool) -> None:
    if as_json:
        print_json(started.as_dict())
        return
    pending = started.rotation
    if started.replaced is not None:
        console.print(
            f"discarded the previous pending key {started.replaced.fingerprint_sha256}",
            markup=False,
        )
    made = "imported" if started.origin == "imported" else "new"
    console.print(
        f"{made} {pending.new_key.key_type} key for project {pending.project} (pending "
        "rotation); "
        f"the deploy key {pending.current_key.fingerprint_sha256} keeps working meanwhile",
        markup=False,
    )
    console.print(pending.new_key.public_key, markup=False)
    console.print(pending.new_key.fingerprint_sha256, markup=False)
    console.print(pending.new_key.fingerprint_md5, markup=False)
    on_host = started.on_host
    if on_host is None:
        console.print(ADD_ACCESS_KEY_INSTRUCTION.format(project=pending.project), markup=False)
        return
    console.print(
        f"registered as a read-only access key of {on_host.repository} on {on_host.host}, "
        f"next to the current one; then run: repolink keys rotate {pending.project} --complete",
        markup=False,
    )
    if started.replaced is not None:
        _print_removed(on_host, started.replaced, "previous pending")


def _print_completed(completed: RotationCompleted, *, as_json: bool) -> None:
    if as_json:
        print_json(completed.as_dict())
        return
    noun = "commit" if completed.fetch.new_commits == 1 else "commits"
    console.print(
        f"fetched with the new key {completed.deploy_key.fingerprint_sha256} "
        f"({completed.fetch.new_commits} new {noun})",
        markup=False,
    )
    console.print(
        f"{completed.deploy_key.fingerprint_sha256} is now the deploy key of project "
        f"{completed.project}",
        markup=False,
    )
    retired = completed.retired_key.fingerprint_sha256
    if completed.on_host is None:
        console.print(
            f"retired {retired} (its private half is erased); "
            "remove it from the repository's access keys",
            markup=False,
        )
        return
    console.print(f"retired {retired} (its private half is erased)", markup=False)
    _print_removed(completed.on_host, completed.retired_key, "retired")


def _print_removed(on_host: OnHost | None, key: KeyFacts, which: str) -> None:
    """The host's side of a removal: done, or the error and what to remove by hand."""
    if on_host is None:
        return
    where = f"{on_host.repository} on {on_host.host}"
    if on_host.error is None:
        console.print(
            f"removed the {which} key {key.fingerprint_sha256} from the access keys of {where}",
            markup=False,
        )
        return
    from repolink.hints import command_hint  # only on this rare path: keys stays quick to load

    error = on_host.error
    err_console.print(
        f"warning: {error.code}: {error.message} — the {which} key {key.fingerprint_sha256} is "
        f"still an access key of {where}; remove it there by hand ({command_hint(error)})",
        markup=False,
    )


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")
