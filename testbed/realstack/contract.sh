#!/usr/bin/env bash
# One command for Skyfleet's contract suite against real OpenStack sites:
# install (cached), bring the sites up (idempotent: running sites are reused),
# run `pytest -m contract tests/contract` with SKYFLEET_CONTRACT_TARGET=real,
# then stop everything this run started (sites and infra) unless REALSTACK_KEEP=1.
#
# usage: contract.sh [extra pytest args...]
# Env:
#   REALSTACK_SITES   up.sh specs (default "site1:20000 site2:21000")
#   REALSTACK_KEEP=1  leave the sites running afterwards
#   SKYFLEET_PYTEST   pytest command (default: <repo>/.venv/bin/pytest, else python3 -m pytest)
# Exit code: pytest's (or 1 if the sites did not come up).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
REPO=$(cd "$HERE/../.." && pwd)
read -r -a SPECS <<< "${REALSTACK_SITES:-site1:20000 site2:21000}"
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
if [[ ${REALSTACK_KEEP:-0} != 1 ]]; then
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

rc=0
(
  cd "$REPO"
  export OS_CLIENT_CONFIG_FILE=$RS_CLOUDS_YAML
  export SKYFLEET_CONTRACT_TARGET=real
  export SKYFLEET_CONTRACT_CLOUDS
  SKYFLEET_CONTRACT_CLOUDS=$(IFS=,; echo "${CLOUDS[*]:0:2}")
  "${PYTEST[@]}" -m contract tests/contract "$@"
) || rc=$?
T_END=$(date +%s)
log "contract.sh: install $((T_INSTALL - T0))s, sites up $((T_UP - T_INSTALL))s," \
  "tests $((T_END - T_UP))s, total $((T_END - T0))s before stop (pytest rc=$rc)"
exit "$rc"
