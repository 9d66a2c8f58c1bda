"""The platform side (architecture.md#words): projects connected to private repositories over SSH
deploy keys, fetched into local mirrors, their commits indexed for the commit picker.

Adapters call the services (:class:`repolink.app.Repolink` builds them); each method owns its
transactions, returns plain records, and starts no git process while a transaction is open.

Modules, one concept each:

- :mod:`~repolink.platform.projects` — ``ProjectService``: projects (name, unique slug);
- :mod:`~repolink.platform.connections` — a connection's records (URL, deploy key, state) and
  the look-ups the services share;
- :mod:`~repolink.platform.connect` — ``ConnectionService``: connect (save, register the key on
  the host, first fetch), show, disconnect;
- :mod:`~repolink.platform.register` — adding a deploy key through a Bitbucket-shaped host API;
- :mod:`~repolink.platform.fetch` — ``FetchService``: ls-remote, git fetch into the mirror,
  index; :mod:`~repolink.platform.scout` indexes a large first clone while it runs;
- :mod:`~repolink.git.mirrors` — the bare mirror, its cross-process lock and repairs;
- :mod:`~repolink.git.sharing` — where SSH connections are shared between fetches;
- :mod:`~repolink.platform.index` — new commits and refs into the store, streamed;
- :mod:`~repolink.platform.commits` — ``CommitService``: list, filter, page, hide and unhide
  commits; refs;
- :mod:`~repolink.platform.checkout` — ``CheckoutService``: one commit's tree into a directory,
  with :mod:`~repolink.platform.submodule_plan`, :mod:`~repolink.platform.submodules` and
  :mod:`~repolink.platform.checkout_dest`;
- :mod:`~repolink.git.diagnosis` — a failed fetch as exactly one error code with a fix.
"""
