"""The fix of an error in the words of a person at a terminal: the repolink command to run.

A service's hint is adapter-neutral ("fetch the project again"). The CLI, and the SSH adapters
whose refusals a git user reads at a terminal, name the exact command instead:
:data:`COMMAND_HINTS` maps an error code (or ``code:reason``, which wins, where one code has
several precise reasons calling for different commands) to a template over the error's
``context``. An error without the context a template needs keeps its own hint.
"""

from __future__ import annotations

from collections.abc import Mapping

from repolink.errors import RepolinkError
from repolink.git.diagnosis import HOSTED_ACCESS_KEY_PLACES

# error code → the command-line wording of its fix, a template over the error's context.
_SUBMODULE_ACCESS = (
    "point a key rule at a key that may read it: repolink key-rules add {project} "
    "{submodule_url} --key FINGERPRINT (or deploy); or add this public key as a read-only "
    "access key on that repository: {public_key}"
)

COMMAND_HINTS: dict[str, str] = {
    "project_exists": "choose another name or give another --slug",
    "project_slug_reserved": "choose another name or give another --slug",
    # the built-in host
    "read_only_key": "ask an admin of {repository} to make access key {key_id} writable "
    "(repolink host access-key update {repository} {key_id} --write)",
    "repository_not_found": "list the repositories with: repolink host repo list {workspace}",
    "label_invalid": "name the machine or purpose, e.g. --label 'ci runner'",
    "workspace_not_found": "a workspace is created with its first repository: "
    "repolink host repo create {workspace}/SLUG",
    "hook_not_found": "list its webhooks with: repolink host hook list {repository}",
    "token_not_found": "list the tokens with `repolink host token list`",
    "token_label_invalid": "name the token after who or what uses it, e.g. --label 'platform CI'",
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
    # Every command that reads a private key takes --passphrase-file (inspect, connect …).
    "key_passphrase_required": "give the passphrase with --passphrase-file FILE (the file "
    "holding only the passphrase), or remove it with `ssh-keygen -p -f KEY`",
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
    "host_key_unknown:unreported": "run `repolink hostkeys scan {host}`, check the fingerprint "
    "with the server's admin, then `repolink hostkeys trust {host} --fingerprint SHA256:…`",
    "host_key_unknown": "check that fingerprint with the server's admin (never from this "
    "connection), then run `repolink hostkeys trust {host} --fingerprint {fingerprint}`",
    "host_key_changed:shipped": "this may be an attack: do not connect until the host's admin "
    "confirms the new key; then `repolink hostkeys trust {host} --fingerprint {fingerprint} "
    "--force` once the service's own documentation lists that fingerprint",
    "host_key_changed": "this may be an attack: do not connect until the host's admin confirms "
    "the new key; then `repolink hostkeys remove {host}` and `repolink hostkeys trust {host} "
    "--fingerprint {fingerprint}`",
    "fingerprint_invalid": "copy the fingerprint as ssh or `repolink hostkeys scan` prints it, "
    "like SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
    "vault_key_from_environment": "add a new version to REPOLINK_SECRET_KEY yourself "
    "('1:OLD,2:NEW', NEW from `openssl rand -base64 32`), restart, then run "
    "`repolink admin reencrypt`",
    # fetch path
    "project_not_found": "run `repolink project list` to see the projects",
    "project_not_found:name_given": "the project named '{project}' has the slug {slug}: "
    "give the slug instead (`repolink project list` shows both)",
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
    "auth_failed": "add this public key as a read-only access key on the repository "
    f"({HOSTED_ACCESS_KEY_PLACES}), then fetch again: "
    "{public_key}",
    # A URL of repolink's own host: a command that works as printed, on the host's machine.
    "auth_failed:built_in_host": "add the deploy key as a read-only access key of {repository}, "
    "on the host's machine: `repolink repo show {project} --public-key | repolink host "
    "access-key add {repository} - --label {project}`, then fetch again: repolink fetch "
    "{project} (the public key: {public_key})",
    "auth_failed:submodule": _SUBMODULE_ACCESS,
    "repo_not_found:submodule": _SUBMODULE_ACCESS,
    "invalid_private_key:ssh_refused_key": "import the private key again "
    "(repolink repo connect … --key FILE), or generate a new one with --generate",
    "git_failed:fetch": "run `repolink doctor PROJECT` to check URL, host key, key and access "
    "step by step",
    "git_failed": "run `repolink doctor` to check URL, host key, key and access step by step",
    "host_api_unreachable": (
        "check --host-api or REPOLINK_HOST_API_URL (e.g. https://api.bitbucket.org/2.0, or "
        "http://HOST:PORT of a repolink host) and that the host is up"
    ),
    "host_api_unauthorized": (
        "export REPOLINK_HOST_API_TOKEN=… with a token that may administer the repository "
        "(on a repolink host: repolink host token create --label LABEL)"
    ),
    "host_api_missing": (
        "give the host API with --host-api URL or export REPOLINK_HOST_API_URL=URL, and its "
        "token with export REPOLINK_HOST_API_TOKEN=… (on a repolink host: repolink host token "
        "create --label LABEL)"
    ),
    "host_api_invalid": (
        "give --host-api (or REPOLINK_HOST_API_URL) as http://HOST:PORT of a repolink host or "
        "an API root such as https://api.bitbucket.org/2.0, the token only in "
        "REPOLINK_HOST_API_TOKEN"
    ),
    "host_repository_not_found": (
        "check the repository path in the URL and --host-api (or REPOLINK_HOST_API_URL)"
    ),
    # end of fetch path
}


def command_hint(error: RepolinkError) -> str:
    """The hint for ``error`` as the CLI and the SSH refusals print it."""
    return command_wording(error.code, error.reason, error.context) or error.hint


def command_wording(code: str, reason: str | None, context: Mapping[str, str]) -> str | None:
    """The command-line wording of the fix for an error with this code, reason and context, or
    ``None`` where there is nothing more exact to say than the error's own hint. A template
    for ``code:reason`` whose context is incomplete gives way to the one for ``code``."""
    if reason is None and code == "auth_failed":
        reason, context = _built_in_host_repository(context)
    keys = [f"{code}:{reason}", code] if reason else [code]
    for key in keys:
        template = COMMAND_HINTS.get(key)
        if template is None:
            continue
        try:
            return template.format_map(context)
        except (KeyError, ValueError):
            continue
    return None


def _built_in_host_repository(context: Mapping[str, str]) -> tuple[str | None, Mapping[str, str]]:
    """``("built_in_host", context with its repository)`` when the refused URL has the form of
    repolink's own host (``WS/SLUG`` on a host that is none of the pinned public ones), else
    ``(None, context)``."""
    # Imported here: the SSH refusals of OpenSSH mode import this module and must start fast.
    from repolink.host.naming import parse_repository_path
    from repolink.knownhosts.pins import pinned_hosts

    host, path = context.get("remote_host"), context.get("remote_path")
    if host is None or path is None or host in {name for name, _port in pinned_hosts()}:
        return None, context
    name = parse_repository_path(path)
    if name is None:
        return None, context
    return "built_in_host", {**context, "repository": name.full_name}
