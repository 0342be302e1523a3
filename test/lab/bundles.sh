#!/usr/bin/env bash
# test/lab/bundles.sh: real flannel and etcd release bundles for the kflan lab.
#
#   bundles.sh flannel VERSION    build (if missing) and print the path of flannel-vVERSION-linux-amd64.tar.gz
#   bundles.sh etcd VERSION       build (if missing) and print the path of etcd-vVERSION-linux-amd64.tar.gz
#   bundles.sh check KIND VERSION  exit 1 with the supported versions unless VERSION is one
#   bundles.sh all                build (if missing) every supported version, print their paths
#   bundles.sh versions           print the supported versions (first one of each = default)
#   bundles.sh info PATH          "NAME VERSION SHA256" of a built bundle
#
# Every bundle is built from the project's own sources: flanneld from the Go
# module github.com/flannel-io/flannel, etcd 3.5/3.6 from the go.etcd.io/etcd
# modules (through a generated wrapper module), both through the Go module
# proxy; etcd 3.4 from Debian's etcd-server/etcd-client packages. Nothing else
# is fetched, and nothing is ever substituted: an unknown version or a failed
# build is an error. See docs/lab.md "Release bundles" for why each recipe is
# the way it is.
#
# Cache: $KFLAN_LAB_CACHE/bundles/{flannel,etcd}/RECIPE/ (default
# /var/cache/kflan-lab; RECIPE is a hash of the build functions below), one
# tarball per version, plus NAME.info (recipe hash, sha256, build time, Go
# version) written last: a tarball without a matching .info is rebuilt. The
# build runs in a temp dir under a lock (one builder at a time, across labs);
# its log stays beside the tarball (NAME.log).
set -Eeuo pipefail
# An unexpected failure names its command and line: a build never fails silently.
# shellcheck disable=SC2154 # rc is set inside the trap
trap 'rc=$?; echo "lab: error: bundles.sh: \"$BASH_COMMAND\" failed (exit $rc) at line $LINENO" >&2; exit $rc' ERR

CACHE=${KFLAN_LAB_CACHE:-/var/cache/kflan-lab}
BUNDLES=$CACHE/bundles
export PATH=$PATH:/usr/local/go/bin
# Never let Go fetch a toolchain, and build with the machine's module cache.
export GOTOOLCHAIN=local

# Supported versions; the first of each list is the lab's default.
FLANNEL_VERSIONS=(0.26.1 0.17.0 0.28.10)
ETCD_VERSIONS=(3.5.35 3.6.16 3.4.23)

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

supported() {
  local v=$1; shift
  local s
  for s; do [[ $s == "$v" ]] && return 0; done
  return 1
}

# An unknown version is an input error (exit 2) naming the supported ones.
check_version() {
  local what=$1 v=$2
  case $what in
    flannel | etcd) ;;
    *) log "error: unknown bundle kind '$what' (flannel, etcd)"; exit 2 ;;
  esac
  local -n list=${what^^}_VERSIONS
  supported "$v" "${list[@]}" && return 0
  log "error: $what $v is not supported by the lab; supported: ${list[*]} (default ${list[0]})"
  exit 2
}

# The recipe's hash: a change in how bundles are built rebuilds them.
recipe_hash() {
  declare -f build_flannel build_etcd_go build_etcd_debian etcd_wrapper_gomod go_fail | sha256sum | cut -c1-12
}

# "tail of Go's error" for a failure message: the last lines of the log.
go_fail() {
  local what=$1 logf=$2
  die "$what failed; last lines of $logf:
$(grep -v '^\s*$' "$logf" | tail -n 15 | sed 's/^/  | /')"
}

# ---------------------------------------------------------------- flannel

# build_flannel VERSION TMPDIR LOG: flanneld the way flannel's release builds it
# (CGO on, static, version through ldflags), built inside a writable copy of the
# module so flannel's own go.sum verifies every dependency (the checksum
# database here lacks entries some versions need).
build_flannel() {
  local v=$1 tmp=$2 logf=$3 mod=github.com/flannel-io/flannel dir verpkg note=""
  local -a env=()
  case $v in
    0.17.*)
      # No checksum-database entry for this flannel version; its zip carries
      # vendor/modules.txt, so build from the module cache, not vendor/.
      env=(GONOSUMDB=github.com/flannel-io GOFLAGS=-mod=mod)
      verpkg=$mod/version ;;
    *) verpkg=$mod/pkg/version ;;
  esac
  dir=$(cd "$tmp" && env "${env[@]}" go mod download -json "$mod@v$v" 2>>"$logf" | jq -r '.Dir // empty') || true
  [[ -n $dir && -d $dir ]] || go_fail "go mod download $mod@v$v (flannel $v)" "$logf"
  cp -a "$dir" "$tmp/src"
  chmod -R u+w "$tmp/src"
  if [[ $v == 0.28.* ]]; then
    # The proxy refuses the zip of the Tencent Cloud SDK this version needs
    # (v1.3.188, 403): build without the tencentvpc backend.
    grep -q 'pkg/backend/tencentvpc' "$tmp/src/main.go" || die "flannel $v: main.go has no tencentvpc import to drop"
    sed -i '\#pkg/backend/tencentvpc"#d' "$tmp/src/main.go"
    note="Built WITHOUT the Tencent Cloud VPC backend: the import of pkg/backend/tencentvpc was
dropped from main.go because the Go module proxy here refuses its SDK (tencentcloud-sdk-go vpc v1.3.188)."
  fi
  local backends
  # (pkg/backend/ since 0.18; backend/ before)
  backends=$(grep -oE '"github.com/flannel-io/flannel/(pkg/)?backend/[a-z0-9]+"' "$tmp/src/main.go" |
    sed 's#.*/##; s#"##' | paste -sd, - | sed 's/,/, /g' || true)
  log "building flanneld v$v from $mod@v$v (Go: $(go env GOVERSION); 1-3 min on 2 cores)"
  (cd "$tmp/src" && env "${env[@]}" CGO_ENABLED=1 go build -o "$tmp/out/flanneld" \
    -ldflags "-s -w -X $verpkg.Version=v$v -extldflags \"-static\"" .) >>"$logf" 2>&1 ||
    go_fail "go build of flanneld ($mod@v$v)" "$logf"
  install -m 0755 "$tmp/src/dist/mk-docker-opts.sh" "$tmp/out/mk-docker-opts.sh"
  cat >"$tmp/out/README.md" <<EOF
# flannel v$v for linux/amd64 (kflan lab build)

Built by kflan's test/lab/bundles.sh from the Go module $mod@v$v
(module sum $(cd "$tmp" && env "${env[@]}" go mod download -json "$mod@v$v" | jq -r .Sum)), $(go env GOVERSION),
like flannel's release: CGO_ENABLED=1, static, -ldflags "-s -w -X $verpkg.Version=v$v".
mk-docker-opts.sh is dist/mk-docker-opts.sh of the same module version.
Backends compiled in (main.go's imports): ${backends:-none found}.
${note:+
$note
}
For the kflan test lab; not an official flannel release.
EOF
  tar -C "$tmp/out" -czf "$tmp/bundle.tar.gz" flanneld mk-docker-opts.sh README.md
}

# ---------------------------------------------------------------- etcd

# go.mod of the wrapper module: etcd's modules replace each other by relative
# path, so none builds alone from the proxy; a module requiring all of them at
# one version does.
etcd_wrapper_gomod() {
  local v=$1 m
  echo "module kflan.lab/etcd-bundle"
  echo
  echo "go 1.23"
  echo
  echo "require ("
  for m in server etcdctl etcdutl api client/pkg client pkg; do echo "	go.etcd.io/etcd/$m/v3 v$v"; done
  if [[ $v == 3.5.* ]]; then
    # 3.5.N also needs raft/v3 at the same version and client/v2 at v2.305.N.
    echo "	go.etcd.io/etcd/raft/v3 v$v"
    echo "	go.etcd.io/etcd/client/v2 v2.305.${v##*.}"
  fi
  echo ")"
}

build_etcd_go() {
  local v=$1 tmp=$2 logf=$3 m dir name=etcd-v$1-linux-amd64
  mkdir -p "$tmp/wrap" "$tmp/out/$name"
  etcd_wrapper_gomod "$v" >"$tmp/wrap/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "go.etcd.io/etcd/server/v3"\n\t_ "go.etcd.io/etcd/etcdctl/v3"\n\t_ "go.etcd.io/etcd/etcdutl/v3"\n)\n' \
    >"$tmp/wrap/tools.go"
  # go.sum: the union of the three main modules' own go.sum files.
  : >"$tmp/wrap/go.sum.all"
  for m in server etcdctl etcdutl; do
    dir=$(cd "$tmp" && go mod download -json "go.etcd.io/etcd/$m/v3@v$v" 2>>"$logf" | jq -r '.Dir // empty') || true
    [[ -n $dir && -f $dir/go.sum ]] || go_fail "go mod download go.etcd.io/etcd/$m/v3@v$v (etcd $v)" "$logf"
    cat "$dir/go.sum" >>"$tmp/wrap/go.sum.all"
  done
  sort -u "$tmp/wrap/go.sum.all" >"$tmp/wrap/go.sum"
  rm "$tmp/wrap/go.sum.all"
  log "building etcd, etcdctl, etcdutl v$v from go.etcd.io/etcd/*/v3@v$v (Go: $(go env GOVERSION); 0.5-2 min)"
  (cd "$tmp/wrap" && go mod tidy) >>"$logf" 2>&1 || go_fail "go mod tidy of the etcd $v wrapper module" "$logf"
  for m in server:etcd etcdctl:etcdctl etcdutl:etcdutl; do
    (cd "$tmp/wrap" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp/out/$name/${m#*:}" \
      "go.etcd.io/etcd/${m%%:*}/v3") >>"$logf" 2>&1 || go_fail "go build of go.etcd.io/etcd/${m%%:*}/v3@v$v" "$logf"
  done
  cat >"$tmp/out/$name/README.md" <<EOF
# etcd v$v for linux/amd64 (kflan lab build)

Built by kflan's test/lab/bundles.sh from the Go modules go.etcd.io/etcd/{server,etcdctl,etcdutl}/v3@v$v
through a wrapper module that requires every go.etcd.io/etcd module at v$v, $(go env GOVERSION),
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' (etcd's release flags, without the git SHA).

For the kflan test lab; not an official etcd release.
EOF
  tar -C "$tmp/out" -czf "$tmp/bundle.tar.gz" "$name"
}

# etcd 3.4 from Debian's packages (bookworm: 3.4.23); 3.4 has no etcdutl.
build_etcd_debian() {
  local v=$1 tmp=$2 logf=$3 dv name=etcd-v$1-linux-amd64
  (cd "$tmp" && apt-get download etcd-server etcd-client) >>"$logf" 2>&1 ||
    die "apt-get download etcd-server etcd-client failed (run apt-get update?); see $logf"
  dv=$(dpkg-deb -f "$tmp"/etcd-server_*.deb Version | sed -E 's/^[0-9]+://; s/-[^-]*$//; s/\+.*$//')
  [[ $dv == "$v" ]] || die "Debian's etcd-server is $dv here, not $v: etcd $v cannot be built on this machine"
  dpkg-deb -x "$tmp"/etcd-server_*.deb "$tmp/x"
  dpkg-deb -x "$tmp"/etcd-client_*.deb "$tmp/x"
  mkdir -p "$tmp/out/$name"
  install -m 0755 "$tmp/x/usr/bin/etcd" "$tmp/x/usr/bin/etcdctl" "$tmp/out/$name/"
  cat >"$tmp/out/$name/README.md" <<EOF
# etcd v$v for linux/amd64 (kflan lab build)

etcd and etcdctl from Debian's packages $(basename "$tmp"/etcd-server_*.deb) and
$(basename "$tmp"/etcd-client_*.deb). etcd 3.4 has no etcdutl.

For the kflan test lab; not an official etcd release.
EOF
  tar -C "$tmp/out" -czf "$tmp/bundle.tar.gz" "$name"
}

# ---------------------------------------------------------------- cache

info_file() { echo "$1.info"; }

# True when PATH is a complete bundle of the current recipe.
bundle_ok() {
  local out=$1 info
  info=$(info_file "$out")
  [[ -f $out && -f $info ]] || return 1
  [[ $(awk '$1 == "recipe" {print $2}' "$info") == "$(recipe_hash)" ]] || return 1
  [[ $(awk '$1 == "sha256" {print $2}' "$info") == "$(sha256sum "$out" | cut -d' ' -f1)" ]]
}

# ensure KIND VERSION: print the bundle's path, building it first if needed.
ensure() {
  local kind=$1 v=$2 name out
  check_version "$kind" "$v"
  name=$kind-v$v-linux-amd64
  # bundles/<kind>/<recipe>/: a bundle built by another recipe (another
  # branch's bundles.sh) lives beside it instead of being rebuilt over it, and
  # a rebuild never replaces a tarball a running lab's inventory names. (Older
  # lab.sh versions wrote another tarball to bundles/flannel-v0.26.1-...; that
  # name is never read.)
  out=$BUNDLES/$kind/$(recipe_hash)/$name.tar.gz
  bundle_ok "$out" && { echo "$out"; return; }
  mkdir -p "$(dirname "$out")"
  exec 8>"$BUNDLES/.lock"
  if ! flock -n 8; then
    log "waiting for another bundle build (lock $BUNDLES/.lock)"
    flock 8
  fi
  if ! bundle_ok "$out"; then
    local tmp logf=${out%.tar.gz}.log t0=$SECONDS
    rm -rf "$BUNDLES"/.build-*
    tmp=$(mktemp -d "$BUNDLES/.build-$name.XXXXXX")
    mkdir -p "$tmp/out"
    { echo "# $name, $(date -u +%FT%TZ), recipe $(recipe_hash)"; } >"$logf"
    case $kind:$v in
      flannel:*) build_flannel "$v" "$tmp" "$logf" ;;
      etcd:3.4.*) build_etcd_debian "$v" "$tmp" "$logf" ;;
      etcd:*) build_etcd_go "$v" "$tmp" "$logf" ;;
    esac
    rm -f "$out" "$(info_file "$out")"
    mv "$tmp/bundle.tar.gz" "$out"
    {
      echo "name $name"
      echo "version $v"
      echo "sha256 $(sha256sum "$out" | cut -d' ' -f1)"
      echo "recipe $(recipe_hash)"
      echo "seconds $((SECONDS - t0))"
      echo "go $(go env GOVERSION 2>/dev/null || echo none)"
      echo "built $(date -u +%FT%TZ)"
    } >"$out.info.tmp"
    mv "$out.info.tmp" "$(info_file "$out")"
    rm -rf "$tmp"
    log "built $name in $((SECONDS - t0)) s ($(du -h "$out" | cut -f1)), log: $logf"
  fi
  exec 8>&-
  echo "$out"
}

# "NAME VERSION SHA256" of a bundle.
info() {
  local out=$1 f
  f=$(info_file "$out")
  [[ -f $f ]] || die "$out: not a lab bundle (no $f)"
  awk '$1 == "name" {n = $2} $1 == "version" {v = $2} $1 == "sha256" {s = $2} END {print n, v, s}' "$f"
}

main() {
  local cmd=${1:-}
  case $cmd in
    flannel | etcd) ensure "$cmd" "${2:?usage: bundles.sh $cmd VERSION}" ;;
    check) check_version "${2:?usage: bundles.sh check KIND VERSION}" "${3:?usage: bundles.sh check KIND VERSION}" ;;
    all)
      local v
      for v in "${FLANNEL_VERSIONS[@]}"; do ensure flannel "$v"; done
      for v in "${ETCD_VERSIONS[@]}"; do ensure etcd "$v"; done ;;
    versions) echo "flannel ${FLANNEL_VERSIONS[*]}"; echo "etcd ${ETCD_VERSIONS[*]}" ;;
    info) info "${2:?usage: bundles.sh info PATH}" ;;
    *) sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"; exit $?
