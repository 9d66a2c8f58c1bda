#!/usr/bin/env bash
# What `make run` starts. Until `repolink serve` exists this is a short, real walkthrough of the
# key commands on the local data directory.
set -eu
bin=.venv/bin
dir=${REPOLINK_DATA_DIR:-.repolink}/walkthrough
mkdir -p "$dir"
rm -f "$dir/deploy_key" "$dir/deploy_key.pub"
echo "== repolink keys generate --type ed25519 --out $dir/deploy_key"
"$bin/repolink" keys generate --type ed25519 --comment "repolink walkthrough" --out "$dir/deploy_key"
echo
echo "== repolink keys inspect $dir/deploy_key"
"$bin/repolink" keys inspect "$dir/deploy_key"
