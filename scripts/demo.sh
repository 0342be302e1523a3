#!/usr/bin/env bash
# The main job on the local lab: boot real hosts (3 masters, 2 nodes), then kflan init and
# kflan doctor against them. Leaves the lab running so you can look around:
#   test/lab/lab.sh ssh lab-n1        a shell on a node
#   test/lab/lab.sh down              remove the lab
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo: the lab needs root (network namespaces, systemd-nspawn)" >&2; exit 1; }
npm run --silent build
test/lab/lab.sh up --masters "${MASTERS:-3}" --nodes "${NODES:-2}"
# KFLAN_LAB_ID=N (0-9) runs the demo on lab N, beside the others (docs/lab.md).
id=${KFLAN_LAB_ID:-0}
inv=.lab${id#0}/inventory.yaml
state=.kflan/lab${id#0}
echo
echo "+ kflan validate -i $inv"
./bin/run.js validate -i "$inv" --state-dir "$state"
echo
echo "+ kflan init -i $inv"
./bin/run.js init -i "$inv" --state-dir "$state"
echo
echo "+ kflan doctor -i $inv"
./bin/run.js doctor -i "$inv" --state-dir "$state"
echo
echo "The lab is still up: test/lab/lab.sh ssh lab-n1 opens a shell; test/lab/lab.sh down removes it."
