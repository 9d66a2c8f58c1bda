#!/usr/bin/env bash
# What `make run` starts: the built-in Git host (SSH + Bitbucket-shaped HTTP API) on the local
# data directory. It grows into `repolink serve` as the platform issues land.
set -eu
bin=.venv/bin
ssh_listen=${REPOLINK_SSH_LISTEN:-127.0.0.1:2222}
http_listen=${REPOLINK_HTTP_LISTEN:-127.0.0.1:8081}
# Asked of repolink itself, so this line and every CLI command name the same directory.
data_dir=$("$bin/repolink" --version | sed -n 's/^data directory: //p')
echo "repolink: data in $data_dir (repolink info shows it too); try, in another terminal:"
echo "  $bin/repolink host repo create acme/widgets"
echo "  $bin/repolink keys generate --out deploy_key && $bin/repolink host access-key add acme/widgets deploy_key.pub --label CI"
echo "  $bin/repolink host token create   # bearer token for http://$http_listen/host/api/2.0"
exec "$bin/repolink" host serve --listen "$ssh_listen" --http "$http_listen"
