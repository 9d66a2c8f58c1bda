"""How the CLI says an error: its exit status and, where the CLI can be more exact, its hint.

Exit statuses (DESIGN.md §4), one table: 2, the input is wrong (bad argument, no such thing, a
clash) — fix the command and run it again; 1, the operation was tried and failed. The most
specific class listed wins.

Hints: a service's hint is adapter-neutral ("fetch the project again"). Where the CLI can name
the exact command, :data:`CLI_HINTS` says it, filled from the error's ``context``; an error
without the context a template needs keeps its own hint. Where one code has several precise
``reason``s that call for different commands, an entry for ``code:reason`` wins over one for
the code.
"""

from __future__ import annotations

from repolink.errors import Conflict, InvalidInput, NotFound, RepolinkError

EXIT_CODES: dict[type[RepolinkError], int] = {
    InvalidInput: 2,
    NotFound: 2,
    Conflict: 2,
    RepolinkError: 1,
}


# error code → the CLI's hint, a template over the error's context.
_SUBMODULE_ACCESS = (
    "point a key rule at a key that may read it: repolink key-rules add {project} "
    "{submodule_url} --key FINGERPRINT (or deploy); or add this public key as a read-only "
    "access key on that repository: {public_key}"
)

CLI_HINTS: dict[str, str] = {
    "project_exists": "choose another name or give another --slug",
    # the built-in host
    "read_only_key": "ask an admin of {repository} to make access key {key_id} writable "
    "(repolink host access-key update {repository} {key_id} --write)",
    "repository_not_found": "list the repositories with: repolink host repo list {workspace}",
    "label_invalid": "name the machine or purpose, e.g. --label 'ci runner'",
    "workspace_not_found": "a workspace is created with its first repository: "
    "repolink host repo create WS/SLUG",
    "hook_not_found": "list its webhooks with: repolink host hook list {repository}",
    # keys and trust
    "fingerprint_invalid:key_fingerprint": (
        "copy it from `repolink additional-keys list PROJECT`, like {example}"
    ),
    "additional_key_exists": (
        "to use it for another host, remove it and add it again with that --host"
    ),
    "additional_key_is_deploy_key": (
        "the deploy key needs no second entry; point key rules at it with --key deploy"
    ),
    "additional_key_in_use": "remove them first: repolink key-rules remove {project} PREFIX",
    "additional_key_not_found": (
        "run `repolink additional-keys list {project}` to see its keys and their fingerprints"
    ),
    "additional_key_not_found:is_deploy_key": (
        "the deploy key is used for the project's repository already; ask only for "
        "additional keys (repolink additional-keys list {project})"
    ),
    "key_rule_exists": "remove it first: repolink key-rules remove {project} {prefix}",
    "key_rule_not_found": "run `repolink key-rules list {project}` to see its rules",
    "unused_days_invalid": "for keys not used in three months: --unused 90",
    "rotation_pending": (
        "finish it: repolink keys rotate {project} --complete; or discard it: --abort; "
        "or start over with another new key: --replace-pending"
    ),
    "rotation_not_pending": "start one: repolink keys rotate {project}",
    "rotation_changed": (
        "look at the keys (repolink keys list), then start again if needed: "
        "repolink keys rotate {project}"
    ),
    "host_key_pin_conflict": (
        "check the fingerprints {host} publishes; if it really replaced its key, run again "
        "with --force (the shipped keys of this host then stop being trusted)"
    ),
    "host_key_shipped": (
        "to replace them, trust the new key with `repolink hostkeys trust {name} "
        "--fingerprint SHA256:… --force`"
    ),
    "host_key_not_found": "run `repolink hostkeys list` to see the trusted host keys",
    # fetch path
    "project_not_found": "run `repolink project list` to see the projects",
    "connection_not_found": (
        "connect one: repolink repo connect {project} git@HOST:TEAM/REPO.git --generate"
    ),
    "connection_exists": "remove that connection first: repolink repo disconnect {project}",
    "key_retired": "fetch with the project's deploy key: repolink fetch {project}",
    "mirror_missing": "fetch the project again: repolink fetch {project}",
    "commit_not_in_mirror": "fetch the project again: repolink fetch {project}",
    "limit_invalid": "give --limit between 1 and {max}",
    "ref_not_found": (
        "run `repolink refs PROJECT` to see the branches and tags (fetch first if it is new)"
    ),
    "commit_sha_invalid": "copy the SHA from `repolink commits PROJECT`",
    # Only a checkout's commit_not_found names the project; the others keep their own hint.
    "commit_not_found": (
        "copy the SHA from `repolink commits {project}`; fetch first if the commit is new"
    ),
    "commit_hidden": "unhide it first if it should be used: repolink commits unhide PROJECT {sha}",
    "cursor_invalid": "pass the next_cursor of the previous page unchanged, with the same --ref",
    # A submodule's fetch diagnosis names its URL; a fetch's own auth_failed keeps its hint.
    "auth_failed": _SUBMODULE_ACCESS,
    "repo_not_found": _SUBMODULE_ACCESS,
    "host_api_unreachable": "check --host-api (the API root, e.g. https://api.bitbucket.org/2.0)",
    "host_api_unauthorized": (
        "give a token that may administer the repository (REPOLINK_HOST_API_TOKEN)"
    ),
    "host_repository_not_found": "check the repository path in the URL and the --host-api root",
    # end of fetch path
}


def cli_hint(error: RepolinkError) -> str:
    """The hint the CLI prints for ``error``."""
    template = CLI_HINTS.get(f"{error.code}:{error.reason}") if error.reason else None
    template = template or CLI_HINTS.get(error.code)
    if template is None:
        return error.hint
    try:
        return template.format_map(error.context)
    except (KeyError, ValueError):
        return error.hint


def exit_code_of(error: RepolinkError) -> int:
    """The exit status for ``error``: that of the nearest class in :data:`EXIT_CODES`."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1
