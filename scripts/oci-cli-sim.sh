#!/usr/bin/env bash
# Exercise the OCI API simulator with the real oci-cli (~800 MB; never installed by tests).
# Usage: scripts/oci-cli-sim.sh [STATE_DIR]
# Installs oci-cli into a throwaway venv, starts the simulator, runs a few `oci ... --endpoint`
# calls against it, then stops the simulator and removes the venv.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"
STATE="${1:-$(mktemp -d)}"
VENV="$(mktemp -d)/oci-cli"

cleanup() {
  [[ -n "${SIM_PID:-}" ]] && kill -TERM "$SIM_PID" 2>/dev/null && wait "$SIM_PID" || true
  rm -rf "$(dirname "$VENV")"
}
trap cleanup EXIT

python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet oci-cli

"$PY" -m nimble_oke.sim.oci.serve "$STATE" --time-scale 600 &
SIM_PID=$!
for _ in $(seq 100); do [[ -f "$STATE/endpoints.json" ]] && grep -q '"oci"' "$STATE/endpoints.json" && break; sleep 0.1; done

ENDPOINT="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["oci"])' "$STATE/endpoints.json")"
CONFIG="$STATE/oci/config"
TENANCY="$(sed -n 's/^tenancy=//p' "$CONFIG")"
OCI=("$VENV/bin/oci" --config-file "$CONFIG" --endpoint "$ENDPOINT")

"${OCI[@]}" iam availability-domain list --compartment-id "$TENANCY"
COMPARTMENT="$("${OCI[@]}" iam compartment list --compartment-id "$TENANCY" --query 'data[0].id' --raw-output)"
"${OCI[@]}" network vcn create --compartment-id "$COMPARTMENT" --cidr-block 10.0.0.0/16 --display-name cli-vcn
"${OCI[@]}" network vcn list --compartment-id "$COMPARTMENT" --all
"${OCI[@]}" ce node-pool-options get --node-pool-option-id all --query 'data."kubernetes-versions"'
echo "oci-cli against the simulator: OK"
