#!/usr/bin/env bash
# Installs the system programs the tests use as real peers (OpenSSH's sshd; Debian's Chromium,
# which Playwright drives for the browser tests), when it can. It never fails the build: it
# says clearly what it could not install, and the tests that need it are skipped with that
# reason. PostgreSQL likewise: the tests' second database (tests/support/postgres.py), installed
# and started when none answers at 127.0.0.1:5432 and this is root with apt-get.
set -u

postgres_answers() {
  (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
}

# Trust for local TCP connections (user postgres), as on the development and CI machines.
postgres_trust_local() {
  local hba
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    [ -f "$hba" ] || continue
    grep -q '^host all all 127.0.0.1/32 trust' "$hba" && continue
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  done
}

postgres_start() {
  local version
  command -v pg_lsclusters >/dev/null 2>&1 || return 1
  postgres_trust_local
  for version in $(pg_lsclusters -h | awk '{print $1}'); do
    pg_ctlcluster "$version" main start >/dev/null 2>&1 || pg_ctlcluster "$version" main reload >/dev/null 2>&1
  done
  for _ in $(seq 1 30); do postgres_answers && return 0; sleep 0.5; done
  return 1
}

ensure_postgres() {
  if [ -n "${TEST_POSTGRES_URL:-}" ] || postgres_answers; then
    return 0  # a server answers (or the tests are pointed at one): the tests decide
  fi
  local skipped="the PostgreSQL runs of the tests will be SKIPPED (each says why)"
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "SKIPPED: no PostgreSQL answers at 127.0.0.1:5432 and it cannot be installed here" \
         "(needs root and apt-get); $skipped — start one with trust for local TCP" \
         "connections, or set TEST_POSTGRES_URL"
    return 0
  fi
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    echo "installing system packages: postgresql"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }; then
      echo "SKIPPED: could not install postgresql with apt-get; $skipped"
      return 0
    fi
  fi
  if postgres_start; then
    echo "started PostgreSQL on 127.0.0.1:5432 for the tests"
  else
    echo "SKIPPED: PostgreSQL is installed but does not answer at 127.0.0.1:5432; $skipped"
  fi
}

need=()
command -v git >/dev/null 2>&1 || need+=(git)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 || need+=(openssh-server)
# The browser tests use this very binary (never a browser Playwright would download), and a
# font with metrics like the common sans-serif ones so that screenshots look as people see them.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -d /usr/share/fonts/truetype/liberation ] || need+=(fonts-liberation)
if [ ${#need[@]} -eq 0 ]; then
  ensure_postgres
  exit 0
fi

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
    ensure_postgres
    exit 0
  fi
  echo "SKIPPED: could not install ${need[*]} with apt-get; $(what_skips "${need[@]}")"
else
  echo "SKIPPED: ${need[*]} missing and not installable here (needs root and apt-get);" \
       "$(what_skips "${need[@]}") — install them to run the whole suite"
fi
ensure_postgres
exit 0
