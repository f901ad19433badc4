# shellcheck shell=bash disable=SC2034  # the RS_* settings are used by the scripts that source this
# Shared settings and helpers for the realstack scripts. Source it, don't run it.
set -euo pipefail

RS_HOME=${REALSTACK_HOME:-/opt/realstack}
RS_VENV=${REALSTACK_VENV:-$RS_HOME/venv}
RS_INFRA=$RS_HOME/infra
RS_SITES=$RS_HOME/sites
RS_BIN=$RS_VENV/bin
RS_HOST=127.0.0.1
RS_DB_PORT=${REALSTACK_DB_PORT:-13306}
RS_DB_SOCK=$RS_INFRA/mysql/mysqld.sock
RS_RABBIT_PORT=${REALSTACK_RABBIT_PORT:-15672}
# not RS_RABBIT_PORT+10000: that is 25672, the dist port of a system RabbitMQ on 5672
RS_RABBIT_DIST_PORT=${REALSTACK_RABBIT_DIST_PORT:-35672}
RS_EPMD_PORT=${REALSTACK_EPMD_PORT:-14369}
RS_ADMIN_PASSWORD=${REALSTACK_ADMIN_PASSWORD:-admin}
RS_SERVICE_PASSWORD=${REALSTACK_SERVICE_PASSWORD:-service}
RS_CLOUDS_YAML=${REALSTACK_CLOUDS_YAML:-$RS_HOME/clouds.yaml}

log() { printf '%s [realstack] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# run_bg NAME PIDFILE LOGFILE cmd... : start cmd in its own session (so the
# recorded PID is also the process-group id and stop.sh can end the whole
# group: uwsgi workers, erlang helpers...). Idempotent: skips if alive.
run_bg() {
  local name=$1 pidfile=$2 logfile=$3; shift 3
  if pid_alive "$pidfile"; then log "$name already running (pid $(pid_of "$pidfile"))"; return 0; fi
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  setsid "$@" >>"$logfile" 2>&1 < /dev/null &
  echo "$! $(proc_start $!)" > "$pidfile"
  log "started $name pid $! (log $logfile)"
}

# A pidfile holds "PID STARTTIME". STARTTIME (field 22 of /proc/PID/stat, clock
# ticks since boot) makes sure a PID that was reused by some other process after
# a crash or reboot is never taken for ours, so stop.sh cannot end a stranger.
proc_start() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# pid_of PIDFILE: print the PID if that process is alive and is the one we started.
pid_of() {
  local pid='' start=''
  [[ -s $1 ]] || return 1
  read -r pid start < "$1" || true
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ -z $start || $(proc_start "$pid") == "$start" ]] || return 1
  echo "$pid"
}
pid_alive() { pid_of "$1" > /dev/null; }

# stop_pidfile PIDFILE [TIMEOUT]: TERM the process group, then KILL after timeout.
stop_pidfile() {
  local pidfile=$1 timeout=${2:-20} pid i
  pid=$(pid_of "$pidfile") || { rm -f "$pidfile"; return 0; }
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 5; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored TERM, sending KILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Any straggler still in the group (e.g. a worker that ignored TERM).
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# stop_pidfiles TIMEOUT PIDFILE...: TERM all groups at once, wait up to
# TIMEOUT seconds for all of them, KILL the rest. Much faster than one by one.
stop_pidfiles() {
  local timeout=$1 f pid i alive sig; shift
  local pids=() names=()
  for f in "$@"; do
    pid=$(pid_of "$f") || continue
    if kill -0 "$pid" 2>/dev/null; then
      # uwsgi: INT = stop now (TERM = graceful, and nova-api's worker then
      # hangs ~15 s on its RPC threads); oslo.service daemons: TERM.
      sig=TERM
      [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */uwsgi ]] && sig=INT
      kill -"$sig" -- "-$pid" 2>/dev/null || kill -"$sig" "$pid" 2>/dev/null || true
      pids+=("$pid")
      names[$pid]=$(basename "$f" .pid)
    fi
  done
  for ((i = 0; i < timeout * 5; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then log "${names[$pid]} (pid $pid) ignored TERM for ${timeout}s, sending KILL"; fi
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  rm -f "$@"
}

# wait_http URL [TIMEOUT]: wait until URL answers with any HTTP status.
wait_http() {
  local url=$1 timeout=${2:-120} pidfile=${3:-} i
  for ((i = 0; i < timeout * 2; i++)); do
    if curl -s -o /dev/null -m 2 "$url"; then return 0; fi
    if [[ -n $pidfile ]] && ! pid_alive "$pidfile"; then
      die "process of $pidfile died while waiting for $url (see its log)"
    fi
    sleep 0.5
  done
  die "timeout waiting for $url"
}

wait_port() {
  local port=$1 timeout=${2:-60} i
  for ((i = 0; i < timeout * 2; i++)); do
    if (exec 3<>"/dev/tcp/$RS_HOST/$port") 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  die "timeout waiting for port $port"
}

mysql_root() { mysql --no-defaults --protocol=socket -S "$RS_DB_SOCK" -uroot "$@"; }

rabbitmq_env() {
  export HOME=$RS_INFRA/rabbitmq
  export RABBITMQ_NODENAME=realstack@localhost
  export RABBITMQ_NODE_IP_ADDRESS=$RS_HOST
  export RABBITMQ_NODE_PORT=$RS_RABBIT_PORT
  export RABBITMQ_DIST_PORT=$RS_RABBIT_DIST_PORT
  export ERL_EPMD_ADDRESS=$RS_HOST
  export ERL_EPMD_PORT=$RS_EPMD_PORT
  export RABBITMQ_BASE=$RS_INFRA/rabbitmq
  export RABBITMQ_MNESIA_BASE=$RS_INFRA/rabbitmq/mnesia
  export RABBITMQ_LOG_BASE=$RS_INFRA/rabbitmq/log
  export RABBITMQ_CONFIG_FILE=$RS_INFRA/rabbitmq/rabbitmq
  export RABBITMQ_CONF_ENV_FILE=$RS_INFRA/rabbitmq/rabbitmq-env.conf  # not /etc/rabbitmq/
  export RABBITMQ_ADVANCED_CONFIG_FILE=$RS_INFRA/rabbitmq/advanced.config
  export RABBITMQ_ENABLED_PLUGINS_FILE=$RS_INFRA/rabbitmq/enabled_plugins
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} +S 1:1 +A 4"
  export RABBITMQ_CTL_ERL_ARGS="+S 1:1"
  export ERL_CRASH_DUMP=$RS_INFRA/log/erl_crash.dump
}
rabbitmqctl_rs() { (rabbitmq_env; /usr/lib/rabbitmq/bin/rabbitmqctl "$@"); }
