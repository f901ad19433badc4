#!/usr/bin/env bash
# One command for Skyfleet's tests against real OpenStack sites:
#   1. install (cached: a matching venv stamp makes it a no-op),
#   2. bring the sites up (idempotent: sites already running are reused),
#   3. run the contract suite: pytest -m contract tests/contract, SKYFLEET_CONTRACT_TARGET=real,
#   4. run the tests marked `realstack` (Skyfleet itself against the real sites), if any,
#   5. stop the sites and infra - unless REALSTACK_KEEP=1, or they were already running
#      when this run began (someone else's: left as found; REALSTACK_KEEP=0 stops them anyway).
#
# usage: contract.sh [extra pytest args for step 3...]
# Env:
#   REALSTACK_SITES   up.sh specs (default "site1:20000 site2:21000 site3:22000:RegionTwo:site1": two
#                     clouds that share nothing, and a second region on site1's Keystone)
#   REALSTACK_KEEP    1: leave the sites running; 0: always stop them; unset: stop them
#                     unless they were already running before this run
#   SKYFLEET_PYTEST   pytest command (default: <repo>/.venv/bin/pytest, else python3 -m pytest)
# Exit code: non-zero if the sites did not come up or any pytest run failed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
REPO=$(cd "$HERE/../.." && pwd)
read -r -a SPECS <<< "${REALSTACK_SITES:-site1:20000 site2:21000 site3:22000:RegionTwo:site1}"
CLOUDS=()
for s in "${SPECS[@]}"; do CLOUDS+=("${s%%:*}"); done

if [[ -n ${SKYFLEET_PYTEST:-} ]]; then
  read -r -a PYTEST <<< "$SKYFLEET_PYTEST"
elif [[ -x $REPO/.venv/bin/pytest ]]; then
  PYTEST=("$REPO/.venv/bin/pytest")
else
  PYTEST=(python3 -m pytest)
fi

T0=$(date +%s)
"$HERE/install.sh"
T_INSTALL=$(date +%s)

# Were these sites (and the infra) already running? Then they are someone's: leave them be.
already_up=1
for f in "$RS_INFRA/run/mysql.pid" "$RS_INFRA/run/rabbitmq.pid"; do pid_alive "$f" || already_up=0; done
for c in "${CLOUDS[@]}"; do
  [[ -f $RS_SITES/$c/.ready ]] && "$HERE/status.sh" "$c" > /dev/null 2>&1 || already_up=0
done
keep=${REALSTACK_KEEP:-}
if [[ -z $keep ]]; then
  keep=$already_up
  if ((already_up)); then
    log "sites ${CLOUDS[*]} were already running: they stay up afterwards (REALSTACK_KEEP=0 stops them)"
  fi
fi
if [[ $keep != 1 ]]; then
  trap 'log "stopping sites and infra (REALSTACK_KEEP=1 keeps them)"; "$HERE/stop.sh" all || true' EXIT
fi

if ! "$HERE/up.sh" "${SPECS[@]}"; then
  for c in "${CLOUDS[@]}"; do
    grep -hE 'ERROR|CRITICAL' "$RS_SITES/$c"/log/*.log 2>/dev/null | tail -n 20 >&2 || true
  done
  exit 1
fi
T_UP=$(date +%s)
"$HERE/status.sh" >&2 || true

export OS_CLIENT_CONFIG_FILE=$RS_CLOUDS_YAML
export SKYFLEET_CONTRACT_TARGET=real
SKYFLEET_CONTRACT_CLOUDS=$(IFS=,; echo "${CLOUDS[*]:0:2}")
export SKYFLEET_CONTRACT_CLOUDS
cd "$REPO"
# Real sites on a small shared machine have one-off hiccups (a Neutron policy cache a moment behind a
# new role, a Glance delete racing another). A failed run is run once more, for its failed tests only
# (pytest --last-failed), and says so loudly; a test that fails twice fails the stage.
run_twice() {
  local what=$1
  shift
  "${PYTEST[@]}" "$@" && return 0
  log "RETRY: $what had failures; running only the failed tests once more (listed above)"
  "${PYTEST[@]}" "$@" --last-failed --last-failed-no-failures none
}

rc=0
run_twice "the contract suite" -m contract tests/contract "$@" || rc=$?
T_CONTRACT=$(date +%s)

rc_real=0
if grep -rlq --include='*.py' 'pytest.mark.realstack' tests 2> /dev/null; then
  log "tests marked realstack (Skyfleet against the real sites)"
  run_twice "the real-site tests" -m realstack tests || rc_real=$?
fi
T_END=$(date +%s)
log "contract.sh: install $((T_INSTALL - T0))s, sites up $((T_UP - T_INSTALL))s," \
  "contract suite $((T_CONTRACT - T_UP))s (rc=$rc), realstack tests $((T_END - T_CONTRACT))s (rc=$rc_real)," \
  "total $((T_END - T0))s before stop"
((rc == 0)) || exit "$rc"
exit "$rc_real"
