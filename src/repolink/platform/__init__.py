"""The platform side (DESIGN.md §2): projects connected to private repositories over SSH
deploy keys, fetched into local mirrors, their commits indexed for the commit picker.

Modules, one concept each:

- :mod:`~repolink.platform.projects` — projects (name, unique slug);
- :mod:`~repolink.platform.connections` — a project's URL, deploy key and connection state;
- :mod:`~repolink.platform.connect` — save a connection and try the first fetch;
- :mod:`~repolink.platform.fetch` — one fetch: ls-remote, git fetch into the mirror, index;
- :mod:`~repolink.git.mirrors` — the bare mirror, its cross-process lock and repairs;
- :mod:`~repolink.git.sharing` — where SSH connections are shared between fetches;
- :mod:`~repolink.platform.index` — new commits and refs into the store, streamed;
- :mod:`~repolink.platform.commits` — list, filter, page, hide and unhide commits; refs;
- :mod:`~repolink.git.diagnosis` — a failed fetch as exactly one error code with a fix.
"""
