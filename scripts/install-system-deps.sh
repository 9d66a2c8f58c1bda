#!/usr/bin/env bash
# Installs the system programs the tests use as real peers (OpenSSH's sshd), when it can.
# It never fails the build: it says clearly what it could not install, and the tests that
# need it are skipped with that reason.
set -u
need=()
command -v git >/dev/null 2>&1 || need+=(git)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 || need+=(openssh-server)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    exit 0
  fi
  echo "SKIPPED: could not install ${need[*]} with apt-get; tests that need them will be skipped"
else
  echo "SKIPPED: ${need[*]} missing and not installable here (needs root and apt-get);" \
       "tests that need them will be skipped — install them to run the whole suite"
fi
exit 0
