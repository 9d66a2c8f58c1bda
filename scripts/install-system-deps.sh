#!/usr/bin/env bash
# Installs the system programs the tests use as real peers (OpenSSH's sshd; Debian's Chromium,
# which Playwright drives for the browser tests), when it can. It never fails the build: it
# says clearly what it could not install, and the tests that need it are skipped with that
# reason.
set -u
need=()
command -v git >/dev/null 2>&1 || need+=(git)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 || need+=(openssh-server)
# The browser tests use this very binary (never a browser Playwright would download), and a
# font with metrics like the common sans-serif ones so that screenshots look as people see them.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -d /usr/share/fonts/truetype/liberation ] || need+=(fonts-liberation)
[ ${#need[@]} -eq 0 ] && exit 0

what_skips() {
  case " $* " in
    *" chromium "*) echo "tests that need them will be skipped (no chromium: browser tests will be skipped)" ;;
    *) echo "tests that need them will be skipped" ;;
  esac
}

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    exit 0
  fi
  echo "SKIPPED: could not install ${need[*]} with apt-get; $(what_skips "${need[@]}")"
else
  echo "SKIPPED: ${need[*]} missing and not installable here (needs root and apt-get);" \
       "$(what_skips "${need[@]}") — install them to run the whole suite"
fi
exit 0
