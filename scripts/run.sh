#!/usr/bin/env bash
# What `make run` starts: `repolink serve` — the platform API, the built-in Git host's API and
# SSH server, and the job workers — on the per-user data directory (REPOLINK_DATA_DIR overrides).
set -eu
bin=.venv/bin
listen=${REPOLINK_LISTEN:-127.0.0.1:8080}
ssh_listen=${REPOLINK_SSH_LISTEN:-127.0.0.1:2222}
api="http://$listen"
# Asked of repolink itself, so this line and every CLI command name the same directory.
data_dir=$("$bin/repolink" --version | sed -n 's/^data directory: //p')
cat <<STEPS
repolink: data in $data_dir (repolink info shows it too). Try, in another terminal:
  $bin/repolink token create --user admin --name try     # a bearer token, printed once
  export TOKEN=…  H="Authorization: Bearer \$TOKEN"  J="Content-Type: application/json"
  curl -H "\$H" -H "\$J" -d '{}' $api/host/api/2.0/repositories/acme/widgets
  curl -H "\$H" -H "\$J" -d '{"name": "Widgets"}' $api/api/v1/projects
  curl -H "\$H" -H "\$J" -d '{"host": "${ssh_listen%:*}", "port": ${ssh_listen##*:}, "fingerprint": "SHA256:…"}' \\
       $api/api/v1/known-hosts                              # a host key printed below
  curl -H "\$H" -H "\$J" -X PUT -d '{"url": "ssh://git@$ssh_listen/acme/widgets.git", "generate": {"type": "ed25519"}}' \\
       $api/api/v1/projects/widgets/repository            # answers the deploy key's public half
  curl -H "\$H" -H "\$J" -d '{"key": "ssh-ed25519 AAAA…", "label": "widgets"}' \\
       $api/host/api/2.0/repositories/acme/widgets/deploy-keys
  curl -H "\$H" -X POST "$api/api/v1/projects/widgets/fetch?wait=true"
  Every endpoint: $api/api/docs
STEPS
exec "$bin/repolink" serve --listen "$listen" --ssh-listen "$ssh_listen"
