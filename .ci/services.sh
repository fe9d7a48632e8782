#!/usr/bin/env bash
# Make sure the services the test suite talks to are up: PostgreSQL on 127.0.0.1:5432 (role root,
# database test), Redis on 127.0.0.1:6379 and, for the Airflow UI screenshot of the slow Celery
# test, Chromium. Idempotent: what already runs is left alone, so `make test` calls it every time.
#
# On this project's machines PostgreSQL and Redis are installed and normally already running; this
# starts them when they are not, and on a machine without them installs Debian's packages (needs
# root and apt-get). Chromium is optional: if it cannot be installed the screenshot test skips.
# CRM_SYNC_SKIP_CHROMIUM=1 skips installing it.
set -euo pipefail

log() { echo "services: $*"; }
as_root() { [[ "$(id -u)" == 0 ]]; }
apt_updated=0
apt_install() {
    if ! as_root || ! command -v apt-get >/dev/null; then
        log "cannot install $* here (needs root and apt-get)"
        return 1
    fi
    if [[ "$apt_updated" == 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=300
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "$@" >/dev/null
}
wait_until() {  # wait_until SECONDS WHAT COMMAND...: poll COMMAND once a second until it succeeds
    local seconds="$1" what="$2"
    shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    log "$what did not come up within ${seconds}s"
    return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
pg_as_root() { psql -h 127.0.0.1 -U root -d postgres -Atqc "$1"; }

ensure_postgres() {
    if ! command -v pg_ctlcluster >/dev/null; then
        log "PostgreSQL is not installed; installing Debian's postgresql"
        apt_install postgresql
    fi
    if ! pg_up; then
        local version
        version="$(ls /etc/postgresql | sort -V | tail -1)"
        log "starting PostgreSQL ${version}"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        wait_until 60 "PostgreSQL" pg_up
    fi
    if ! pg_as_root "select 1" >/dev/null 2>&1 && as_root; then
        # A cluster this script installed: let the local root role in over loopback, as the
        # project's machines are set up (trust for 127.0.0.1).
        log "creating the PostgreSQL role root (trusted on 127.0.0.1)"
        runuser -u postgres -- psql -Atqc "do \$\$ begin if not exists (select from pg_roles where rolname = 'root') then create role root superuser login; end if; end \$\$"
        local hba
        hba="$(runuser -u postgres -- psql -Atqc 'show hba_file')"
        if ! grep -q "crm-sync services.sh" "$hba"; then
            sed -i "1i host all root 127.0.0.1/32 trust  # crm-sync services.sh" "$hba"
            runuser -u postgres -- psql -Atqc "select pg_reload_conf()" >/dev/null
        fi
    fi
    if [[ "$(pg_as_root "select 1 from pg_database where datname = 'test'")" != 1 ]]; then
        log "creating database test"
        pg_as_root "create database test" >/dev/null
    fi
    log "PostgreSQL ready on 127.0.0.1:5432"
}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }

ensure_redis() {
    if ! command -v redis-server >/dev/null; then
        log "Redis is not installed; installing Debian's redis-server"
        apt_install redis-server
    fi
    if ! redis_up; then
        log "starting Redis"
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log
        wait_until 30 "Redis" redis_up
    fi
    log "Redis ready on 127.0.0.1:6379"
}

ensure_chromium() {
    if [[ "${CRM_SYNC_SKIP_CHROMIUM:-0}" == 1 ]]; then
        return 0
    fi
    if command -v chromium >/dev/null; then
        log "Chromium ready ($(command -v chromium))"
        return 0
    fi
    log "installing Debian's chromium (headless Airflow UI screenshot)"
    if apt_install chromium; then
        log "Chromium ready ($(command -v chromium))"
    else
        log "no Chromium: the UI screenshot test will skip"
    fi
}

ensure_postgres
ensure_redis
ensure_chromium
