"""SSH remote URLs: parse, refuse, canonicalise.

This module is the only way a URL reaches git. Everything else in repolink holds an
:class:`SSHURL` (built by :func:`parse_ssh_url`) and hands ``url.git_url`` to git, after ``--``.
A string that did not come through here must never be given to git or ssh.

Accepted forms:

- scp-like ``[user@]host:path`` and ``[user@][ipv6]:path``;
- ``ssh://[user@]host[:port]/path`` (``git+ssh://`` and ``ssh+git://`` are synonyms), IPv6
  literals in brackets, percent-escapes in the path (git decodes them, so we do too).

Path convention: like Bitbucket, GitHub, GitLab and the built-in host, the repository path is
read from the server's root, so ``git@host:team/repo.git``, ``git@host:/team/repo.git`` and
``ssh://git@host/team/repo`` are the same repository. Home-relative paths are written with a
tilde (``git@host:~/repo.git``, ``ssh://host/~user/repo.git``) and keep working: git expands them
on the server.

Everything that could make git or ssh do something other than "connect to this host and ask for
this repository" is refused with a :class:`~repolink.errors.URLError` whose ``code`` names the
reason: another transport, a local path, an option-looking host, user or path, whitespace or
control characters, ``..`` segments, …
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass

from repolink.errors import URLError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PORT", "SSHURL", "parse_ssh_url"]

DEFAULT_PORT = 22
MAX_URL_LENGTH = 2048
_SHOWN_CHARS = 200

_SSH_SCHEMES = frozenset({"ssh", "git+ssh", "ssh+git"})
_HTTP_SCHEMES = frozenset({"http", "https"})
# No port, or the scheme's own: the SSH suggestion then loses nothing.
_DEFAULT_WEB_PORTS = frozenset({"", "80", "443"})
_SCHEME_NAMES = _SSH_SCHEMES | _HTTP_SCHEMES | {"git", "file"}
# git reads "<name>::<address>" as "run the remote helper git-remote-<name>".
_TRANSPORT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:(?:[\\/]|$)")
_SCP_BRACKETED = re.compile(r"(?:([^@/\[\]:]*)@)?\[([^\]/]*)\]:(.*)", re.DOTALL)
_HOST_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")
_USER = re.compile(r"[A-Za-z0-9._+-]+")
_PORT = re.compile(r"[0-9]{1,5}")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_KEY_LINE = re.compile(r"(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-|sk-)\S*\s+AAAA")
_KEY_MARKERS = ("-----BEGIN", "PRIVATE KEY", "---- BEGIN SSH2", "PuTTY-User-Key-File")
# Runs of base64 without '/' so that long repository paths do not look like secrets.
_LONG_BASE64 = re.compile(r"[A-Za-z0-9+=]{48,}")
_SECRET_LOOKING = re.compile(r"[A-Za-z0-9+=]{32,}")
_USERINFO = re.compile(r"(://)([^/@]*)@")
_PLAIN_USERINFO = re.compile(r"[A-Za-z0-9._-]{1,32}")

_EXAMPLE = "git@bitbucket.org:team/repo.git"
_FORGES_OWNER_REPO = frozenset({"github.com", "bitbucket.org"})
_FORGES = _FORGES_OWNER_REPO | {"gitlab.com"}


@dataclass(frozen=True, eq=False)
class SSHURL:
    """One SSH remote, validated. Equal (and equally hashed) when the canonical forms are equal.

    Constructing one directly runs the same checks as :func:`parse_ssh_url` on the fields.

    - ``user``: as given, ``None`` when the URL names none (ssh then uses its default);
    - ``host``: lower-case; an IPv6 address without brackets, in its compressed form;
    - ``port``: ``None`` for the default port 22 (an explicit ``:22`` becomes ``None``);
    - ``path``: the repository path without leading ``/``, percent-escapes decoded
      (``team/repo.git``, ``~user/repo.git``);
    - ``original``: the text the caller gave, without surrounding whitespace.
    """

    user: str | None
    host: str
    port: int | None
    path: str
    original: str

    def __post_init__(self) -> None:
        text = self.original or _assemble(self.user, self.host, self.port, self.path)
        if self.user is not None:
            _check_user(self.user, text)
        object.__setattr__(self, "host", _check_host(self.host, text))
        object.__setattr__(self, "port", _check_port(self.port, text))
        object.__setattr__(self, "path", _check_path(self.path, text))

    @property
    def canonical(self) -> str:
        """``ssh://[user@]host[:port]/path``: default port, ``.git``, ``/`` and ``.`` dropped."""
        return _assemble(self.user, self.host, self.port, "/".join(_segments(self.path)))

    @property
    def git_url(self) -> str:
        """What git is given (after ``--``): always the ``ssh://`` form."""
        return _assemble(self.user, self.host, self.port, self.path)

    @property
    def known_hosts_name(self) -> str:
        """The host as OpenSSH writes it in known_hosts: ``host`` or ``[host]:port``."""
        if self.port is None:
            return self.host
        return f"[{self.host}]:{self.port}"

    @property
    def host_port(self) -> tuple[str, int]:
        return self.host, DEFAULT_PORT if self.port is None else self.port

    @property
    def repo_name(self) -> str:
        """The last path segment without ``.git``: ``repo`` for ``git@host:team/repo.git``."""
        return _segments(self.path)[-1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SSHURL):
            return NotImplemented
        return self.canonical == other.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)


def parse_ssh_url(text: str) -> SSHURL:
    """Parse an SSH remote URL, or raise :class:`URLError` naming what is wrong and the fix."""
    if not isinstance(text, str):
        raise URLError(
            "url_invalid", "the URL is not text", f"give the SSH URL as text, like {_EXAMPLE}"
        )
    stripped = text.strip()
    if not stripped:
        raise URLError(
            "url_empty", "no URL given", f"give the repository's SSH URL, like {_EXAMPLE}"
        )
    _refuse_key_material(stripped)
    if len(stripped) > MAX_URL_LENGTH:
        raise URLError(
            "url_invalid",
            f"the URL is {len(stripped)} characters long, more than {MAX_URL_LENGTH}",
            f"give the repository's SSH URL, like {_EXAMPLE}",
        )
    if _TRANSPORT.match(stripped):
        raise _refusal(
            "url_transport",
            "git would run a remote helper program for this URL",
            stripped,
            f"only SSH remotes are used; give one like {_EXAMPLE}",
        )
    if stripped.startswith("-"):
        raise _option_injection("the URL starts with '-'", stripped)
    _refuse_bad_characters(stripped, stripped, "")

    scheme = _SCHEME.match(stripped)
    if scheme is None:
        return _parse_scp_like(stripped)
    name = scheme.group(1).lower()
    rest = stripped[scheme.end() :]
    if name in _SSH_SCHEMES:
        return _parse_ssh_scheme(stripped, rest)
    if name in _HTTP_SCHEMES:
        raise _https_refusal(stripped, rest)
    if name == "file":
        raise _refusal(
            "url_file",
            "file:// URLs point at this machine, not at a repository server",
            stripped,
            f"give the repository's SSH URL, like {_EXAMPLE}",
        )
    raise _refusal(
        "url_unsupported_scheme",
        f"{name}:// URLs are not supported, only SSH",
        stripped,
        f"give the repository's SSH URL, like {_EXAMPLE} or ssh://git@host/team/repo.git",
    )


# -- the two syntaxes ------------------------------------------------------------------------


def _parse_ssh_scheme(text: str, rest: str) -> SSHURL:
    authority, _, raw_path = rest.partition("/")
    user: str | None = None
    host_port = authority
    if "@" in authority:
        user, _, host_port = authority.rpartition("@")
        if ":" in user:
            raise _refusal(
                "url_invalid",
                "the URL holds a password; SSH remotes authenticate with the key",
                text,
                "remove ':password' from the URL",
            )
    host, port = _split_host_port(host_port, text)
    return SSHURL(user, host, port, _percent_decode(raw_path, text), text)


def _parse_scp_like(text: str) -> SSHURL:
    if _WINDOWS_DRIVE.match(text) or text.startswith(("/", "\\", ".", "~")):
        raise _local_path(text)
    bracketed = _SCP_BRACKETED.fullmatch(text)
    if bracketed is not None:
        bracket_user, inner, bracket_path = bracketed.groups()
        return SSHURL(bracket_user, _ipv6(inner, text), None, bracket_path, text)

    colon = text.find(":")
    slash = text.find("/")
    if colon < 0:
        if "@" in text:
            raise _refusal(
                "url_invalid",
                "the URL has no ':' between host and path",
                text,
                f"write a ':' after the host, like {_EXAMPLE}",
            )
        raise _local_path(text)
    if 0 <= slash < colon:
        # git reads "a/b:c" as a local path, whatever follows.
        raise _local_path(text)
    authority, path = text[:colon], text[colon + 1 :]
    if "[" in authority or "]" in authority:
        raise _refusal(
            "url_invalid",
            "the host has unbalanced brackets",
            text,
            "write IPv6 hosts as git@[2001:db8::1]:repo.git, ports as ssh://host:2222/repo.git",
        )
    if authority.lower() in _SCHEME_NAMES and path.startswith("/"):
        raise _refusal(
            "url_invalid",
            f"this looks like a mistyped {authority}:// URL",
            text,
            "write two slashes after the scheme, like ssh://git@host/team/repo.git",
        )
    user: str | None = None
    host = authority
    if "@" in authority:
        user, _, host = authority.rpartition("@")
    elif len(host) == 1 and host.isalpha():
        raise _local_path(text)  # "c:repo" is a Windows drive to git, not a host named "c"
    return SSHURL(user, host, None, path, text)


def _split_host_port(host_port: str, text: str) -> tuple[str, int | None]:
    if host_port.startswith("["):
        inner, bracket, after = host_port[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise _refusal(
                "url_invalid",
                "the IPv6 host is not closed by ']'",
                text,
                "write IPv6 hosts as ssh://git@[2001:db8::1]:2222/team/repo.git",
            )
        return _ipv6(inner, text), _parse_port(after[1:], text) if after else None
    if host_port.count(":") > 1:
        raise _refusal(
            "url_invalid",
            "an IPv6 host must be written in brackets",
            text,
            "write IPv6 hosts as ssh://git@[2001:db8::1]:2222/team/repo.git",
        )
    host, colon, port_text = host_port.partition(":")
    return host, _parse_port(port_text, text) if colon else None


def _parse_port(port_text: str, text: str) -> int:
    if _PORT.fullmatch(port_text) and 0 < int(port_text) <= 65535:
        return int(port_text)
    raise _refusal(
        "url_invalid",
        "the port is not a number from 1 to 65535",
        text,
        "write the port as digits after the host, like ssh://git@host:2222/team/repo.git",
    )


def _ipv6(inner: str, text: str) -> str:
    if "%" in inner:
        raise _refusal(
            "url_invalid",
            "IPv6 zone ids and percent-escapes are not supported in the host",
            text,
            "use a global IPv6 address or a host name",
        )
    try:
        return ipaddress.IPv6Address(inner).compressed
    except ValueError:
        raise _refusal(
            "url_invalid",
            "the bracketed host is not an IPv6 address",
            text,
            "write IPv6 hosts as git@[2001:db8::1]:repo.git, ports as ssh://host:2222/repo.git",
        ) from None


def _percent_decode(raw: str, text: str) -> str:
    """Decode %XX the way git will, refusing stray '%' and escapes that are not UTF-8."""
    if "%" not in raw:
        return raw
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] != "%":
            out += raw[i].encode("utf-8", "surrogatepass")
            i += 1
        elif _PERCENT_ESCAPE.match(raw, i):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            raise _refusal(
                "url_invalid",
                "the path has a '%' that is not followed by two hex digits",
                text,
                "write a literal '%' as %25",
            )
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise _refusal(
            "url_invalid",
            "the path's percent-escapes do not decode to UTF-8 text",
            text,
            "fix the percent-escapes in the path",
        ) from None


# -- field checks (shared by parse and direct construction) -----------------------------------


def _check_user(user: str, text: str) -> None:
    if user.startswith("-") or _unescape(user).startswith("-"):
        raise _option_injection("the user name starts with '-'", text)
    if not user:
        raise _refusal(
            "url_invalid", "the user name before '@' is empty", text, f"write it like {_EXAMPLE}"
        )
    if not _USER.fullmatch(user):
        raise _refusal(
            "url_invalid",
            "the user name may hold only letters, digits and . _ + -",
            text,
            f"check the user before '@' (usually 'git', as in {_EXAMPLE})",
        )


def _check_host(host: str, text: str) -> str:
    if host.startswith("-") or _unescape(host).startswith("-"):
        raise _option_injection("the host starts with '-'", text)
    if not host:
        raise _refusal("url_invalid", "the URL has no host", text, f"write it like {_EXAMPLE}")
    if ":" in host:
        return _ipv6(host, text)
    if "%" in host:
        raise _refusal(
            "url_invalid",
            "percent-escapes are not allowed in the host",
            text,
            "write the host name as plain text",
        )
    if not host.isascii():
        raise _refusal(
            "url_invalid",
            "the host name is not ASCII",
            text,
            "write an internationalised host name in its xn-- (punycode) form",
        )
    lowered = host.lower()
    if len(lowered) > 253 or not _HOSTNAME.fullmatch(lowered):
        raise _refusal(
            "url_invalid",
            "the host is not a valid host name or address",
            text,
            "check the host: letters, digits, '-' and '.' only, no trailing dot",
        )
    return lowered


def _check_port(port: int | None, text: str) -> int | None:
    if port is None or port == DEFAULT_PORT:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
        raise _refusal(
            "url_invalid", "the port is not a number from 1 to 65535", text, "fix the port"
        )
    return port


def _check_path(path: str, text: str) -> str:
    _refuse_bad_characters(path, text, " of the path")
    relative = path.lstrip("/")
    if relative.startswith("-"):
        raise _option_injection("the repository path starts with '-'", text)
    segments = relative.split("/")
    if any(segment.lower().replace("%2e", ".") == ".." for segment in segments):
        raise _refusal(
            "url_dot_segments",
            "the path has a '..' segment",
            text,
            "give the repository's own path, without '..'",
        )
    if all(segment in ("", ".") for segment in segments):
        raise _empty_path(text)
    return relative


def _segments(path: str) -> list[str]:
    """The path's segments with empty and '.' segments and every '.git' ending dropped."""
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    while True:
        last = segments[-1]
        if last.endswith(".git") and len(last) > len(".git"):
            segments[-1] = last[: -len(".git")]
        elif last == ".git" and len(segments) > 1:
            segments.pop()
        else:
            return segments


def _assemble(user: str | None, host: str, port: int | None, path: str) -> str:
    authority = f"[{host}]" if ":" in host else host
    if user is not None:
        authority = f"{user}@{authority}"
    if port is not None:
        authority = f"{authority}:{port}"
    # git percent-decodes ssh:// URLs, so a literal '%' travels as %25.
    return f"ssh://{authority}/{path.replace('%', '%25')}"


def _unescape(text: str) -> str:
    return _PERCENT_ESCAPE.sub(lambda match: chr(int(match.group(0)[1:], 16)), text)


# -- refusals ---------------------------------------------------------------------------------


def _refuse_key_material(text: str) -> None:
    if (
        any(marker in text for marker in _KEY_MARKERS)
        or _KEY_LINE.match(text)
        or _LONG_BASE64.search(text)
    ):
        # Never echoed: this may be a private key pasted into the wrong field.
        raise URLError(
            "url_key_material",
            "this looks like SSH key material, not a repository URL",
            f"give the repository's SSH URL here, like {_EXAMPLE}; the key goes in the key field",
        )


def _refuse_bad_characters(value: str, text: str, where: str) -> None:
    for index, char in enumerate(value):
        if char.isspace():
            raise _refusal(
                "url_whitespace",
                f"the URL contains whitespace (U+{ord(char):04X}) at character {index + 1}{where}",
                text,
                "remove the spaces, tabs or line breaks (copy the URL from the clone dialog)",
            )
        if not char.isprintable():
            raise _refusal(
                "url_control_chars",
                f"the URL contains a control or invisible character (U+{ord(char):04X})"
                f" at character {index + 1}{where}",
                text,
                "type the URL again or copy it from the repository's clone dialog",
            )


def _https_refusal(text: str, rest: str) -> URLError:
    authority, _, path = rest.partition("/")
    host_port = authority.rpartition("@")[2].lower()
    if host_port.startswith("["):
        host, _, port_text = host_port.partition("]")
        host += "]"
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = host_port.partition(":")
    host = host.removeprefix("www.")
    path = re.split(r"[?#]", path, maxsplit=1)[0]
    if host == "gitlab.com":
        path = path.split("/-/", 1)[0]
    segments = [segment for segment in path.split("/") if segment]
    if host in _FORGES_OWNER_REPO:
        segments = segments[:2]
    keeps_port = port_text not in _DEFAULT_WEB_PORTS
    suggestion = None
    if segments:
        repo_path = "/".join(segments)
        if not repo_path.endswith(".git"):
            repo_path += ".git"
        # The scp form cannot carry a port: with one, only the ssh:// form loses nothing.
        suggestion = (
            f"ssh://git@{host}:{port_text}/{repo_path}" if keeps_port else f"git@{host}:{repo_path}"
        )
        try:
            parse_ssh_url(suggestion)
        except URLError:
            suggestion = None
    if suggestion is None:
        hint = "use the repository's SSH URL from its clone dialog, like " + _EXAMPLE
    elif keeps_port:
        # A web port is rarely the SSH port, so this is worded as the guess it is.
        hint = (
            "use the repository's SSH URL from its clone dialog; if the server takes SSH on"
            f" port {port_text} too, it is {suggestion}"
        )
    elif host in _FORGES:
        hint = f"use the SSH form: {suggestion}"
    else:
        hint = (
            f"use the repository's SSH URL from its clone dialog, probably {suggestion}"
            " (some servers use another user or ssh://host:port/…)"
        )
    # The suggestion alone, for an adapter that offers it as a one-click replacement.
    return _refusal(
        "url_https",
        "HTTPS URLs are not used with deploy keys, only SSH",
        text,
        hint,
        context={"suggestion": suggestion} if suggestion else None,
    )


def _option_injection(what: str, text: str) -> URLError:
    return _refusal(
        "url_option_injection",
        f"{what}, which git or ssh would read as a command-line option",
        text,
        f"give the repository's SSH URL, like {_EXAMPLE}",
    )


def _local_path(text: str) -> URLError:
    return _refusal(
        "url_local_path",
        "this is a local path or has no host, not an SSH remote",
        text,
        f"give the repository's SSH URL with a host, like {_EXAMPLE}",
    )


def _empty_path(text: str) -> URLError:
    return _refusal(
        "url_empty_path",
        "the URL names no repository path",
        text,
        f"add the repository path after the host, like {_EXAMPLE}",
    )


def _refusal(
    code: str, what: str, text: str, hint: str, *, context: dict[str, str] | None = None
) -> URLError:
    return URLError(code, f"{what}: {_show(text)}", hint, context=context)


def _show(text: str) -> str:
    """The URL as it may appear in a message: credentials and secret-looking runs hidden,
    truncated, and repr-escaped so it stays on one line."""

    def userinfo(match: re.Match[str]) -> str:
        shown = match.group(2) if _PLAIN_USERINFO.fullmatch(match.group(2)) else "***"
        return f"{match.group(1)}{shown}@"

    safe = _USERINFO.sub(userinfo, text, count=1)
    safe = _SECRET_LOOKING.sub("<redacted>", safe)
    if len(safe) > _SHOWN_CHARS:
        safe = safe[:_SHOWN_CHARS] + "…"
    return repr(safe)
