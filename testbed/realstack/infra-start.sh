#!/usr/bin/env bash
# Start the shared infrastructure used by all realstack sites: a private
# MariaDB instance and a private RabbitMQ node, both bound to 127.0.0.1 on
# non-default ports, with their data under $REALSTACK_HOME/infra.
# Idempotent: an already running piece is left alone.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"

mkdir -p "$RS_INFRA/mysql" "$RS_INFRA/rabbitmq/log" "$RS_INFRA/run" "$RS_INFRA/log"

# ---------------------------------------------------------------- MariaDB
if ! pid_alive "$RS_INFRA/run/mysql.pid"; then
  cat > "$RS_INFRA/mysql/my.cnf" <<EOF
[mysqld]
user=root
datadir=$RS_INFRA/mysql/data
socket=$RS_DB_SOCK
port=$RS_DB_PORT
bind-address=$RS_HOST
skip-name-resolve
max_connections=1000
innodb_buffer_pool_size=64M
innodb_log_file_size=16M
innodb_flush_log_at_trx_commit=0
sync_binlog=0
performance_schema=OFF
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
log-error=$RS_INFRA/log/mysqld.err
EOF
  # --defaults-file everywhere: a system MariaDB's /etc/mysql/my.cnf (user=mysql,
  # datadir=/var/lib/mysql, port 3306) must not leak into the private instance.
  if [[ ! -f $RS_INFRA/mysql/data/.realstack-initialised ]]; then
    log "initialising MariaDB datadir"
    rm -rf "$RS_INFRA/mysql/data"
    mariadb-install-db --defaults-file="$RS_INFRA/mysql/my.cnf" --user=root --datadir="$RS_INFRA/mysql/data" \
      --auth-root-authentication-method=normal --skip-test-db > "$RS_INFRA/log/mysql-install.log" 2>&1 \
      || { tail -20 "$RS_INFRA/log/mysql-install.log" >&2; die "mariadb-install-db failed"; }
    touch "$RS_INFRA/mysql/data/.realstack-initialised"
  fi
  run_bg mysqld "$RS_INFRA/run/mysql.pid" "$RS_INFRA/log/mysqld.log" \
    /usr/sbin/mariadbd --defaults-file="$RS_INFRA/mysql/my.cnf"
fi

# --------------------------------------------------------------- RabbitMQ
if ! pid_alive "$RS_INFRA/run/rabbitmq.pid"; then
  rabbitmq_env
  echo "[]." > "$RABBITMQ_ENABLED_PLUGINS_FILE"
  : > "$RABBITMQ_CONF_ENV_FILE"
  cat > "$RS_INFRA/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.1 = $RS_HOST:$RS_RABBIT_PORT
loopback_users = none
vm_memory_high_watermark.relative = 0.2
disk_free_limit.absolute = 50MB
log.file.level = warning
EOF
  [[ -f $HOME/.erlang.cookie ]] || { head -c 20 /dev/urandom | base64 | tr -dc A-Za-z0-9 > "$HOME/.erlang.cookie"; chmod 400 "$HOME/.erlang.cookie"; }
  # epmd first, in the foreground of its own group, so that we own its PID.
  run_bg epmd "$RS_INFRA/run/epmd.pid" "$RS_INFRA/log/epmd.log" \
    env ERL_EPMD_ADDRESS="$RS_HOST" epmd -port "$RS_EPMD_PORT"
  sleep 0.5
  run_bg rabbitmq "$RS_INFRA/run/rabbitmq.pid" "$RS_INFRA/log/rabbitmq.log" \
    /usr/lib/rabbitmq/bin/rabbitmq-server
fi

# ------------------------------------------------------------------ waits
for _ in $(seq 1 120); do
  mysql_root -e 'select 1' > /dev/null 2>&1 && break
  sleep 0.5
done
mysql_root -e 'select 1' > /dev/null || die "MariaDB did not come up, see $RS_INFRA/log/"
for _ in $(seq 1 120); do
  rabbitmqctl_rs -q await_startup > /dev/null 2>&1 && break
  sleep 1
done
rabbitmqctl_rs -q await_startup > /dev/null || die "RabbitMQ did not come up, see $RS_INFRA/log/"
log "infra up: MariaDB $RS_HOST:$RS_DB_PORT, RabbitMQ $RS_HOST:$RS_RABBIT_PORT"
