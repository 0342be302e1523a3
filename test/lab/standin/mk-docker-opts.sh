#!/bin/bash
# =============================================================================
#  LAB-ONLY STAND-IN FOR flannel's dist/mk-docker-opts.sh -- NEVER SHIP.
# =============================================================================
# Behaves like flannel's script (contract §7): reads the flannel env file and
# writes docker daemon options. Output file is truncated first, then the
# individual DOCKER_OPT_* variables in alphabetical order, then the combined key.

usage() {
  cat >&2 <<EOF
$0 [-f FLANNEL-ENV-FILE] [-d DOCKER-ENV-FILE] [-i] [-c] [-m] [-k COMBINED-KEY]

Generate Docker daemon options based on flannel env file
OPTIONS:
	-f	Path to flannel env file. Defaults to /run/flannel/subnet.env
	-d	Path to Docker env file to write to. Defaults to /run/docker_opts.env
	-i	Output each Docker option as individual var. e.g. DOCKER_OPT_MTU=1500
	-c	Output combined Docker options into DOCKER_OPTS var
	-k	Set the combined options key to this value (default DOCKER_OPTS=)
	-m	Do not output --ip-masq (useful for older Docker version)
EOF
  exit 1
}

flannel_env=/run/flannel/subnet.env
docker_env=/run/docker_opts.env
combined_key=DOCKER_OPTS
indiv=false
combined=false
ipmasq=true

while getopts "f:d:icmk:h" opt; do
  case $opt in
    f) flannel_env=$OPTARG ;;
    d) docker_env=$OPTARG ;;
    i) indiv=true ;;
    c) combined=true ;;
    m) ipmasq=false ;;
    k) combined_key=$OPTARG ;;
    *) usage ;;
  esac
done

if [[ $indiv == false && $combined == false ]]; then
  indiv=true
  combined=true
fi

# shellcheck disable=SC1090
[[ -f $flannel_env ]] && source "$flannel_env"

declare -A opts=()
[[ -n ${FLANNEL_SUBNET:-} ]] && opts[DOCKER_OPT_BIP]="--bip=$FLANNEL_SUBNET"
[[ -n ${FLANNEL_MTU:-} ]] && opts[DOCKER_OPT_MTU]="--mtu=$FLANNEL_MTU"
if [[ -n ${FLANNEL_IPMASQ:-} && $ipmasq == true ]]; then
  # Inverted on purpose: when flannel masquerades, docker must not.
  case $FLANNEL_IPMASQ in
    true) opts[DOCKER_OPT_IPMASQ]="--ip-masq=false" ;;
    false) opts[DOCKER_OPT_IPMASQ]="--ip-masq=true" ;;
    *) echo "Invalid value of FLANNEL_IPMASQ: $FLANNEL_IPMASQ" >&2; exit 1 ;;
  esac
fi

# The combined value starts from whatever $KEY already holds.
combined_val=${!combined_key:-}
: >"$docker_env"
for name in $(printf '%s\n' "${!opts[@]}" | LC_ALL=C sort); do
  [[ $indiv == true ]] && echo "$name=\"${opts[$name]}\"" >>"$docker_env"
  combined_val+=" ${opts[$name]}"
done
[[ $combined == true ]] && echo "$combined_key=\"$combined_val\"" >>"$docker_env"

# Since flannel v0.18: refuse when the host already routes the subnet via a gateway.
if [[ -n ${FLANNEL_SUBNET:-} ]]; then
  IFS=./ read -r a b c d len <<<"$FLANNEL_SUBNET"
  n=$(((a << 24 | b << 16 | c << 8 | d) & ((0xFFFFFFFF << (32 - len)) & 0xFFFFFFFF)))
  net="$((n >> 24 & 255)).$((n >> 16 & 255)).$((n >> 8 & 255)).$((n & 255))/$len"
  if ip route show 2>/dev/null | grep -q "^$net via "; then
    echo "Your routing table already contains the subnet: $net" >&2
    exit 1
  fi
fi
exit 0
