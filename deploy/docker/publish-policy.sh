#!/usr/bin/env bash
# Publishes a policy artifact into a policy directory so that running lcio-servers hot-reload it.
#
#   publish-policy.sh [--if-absent] [--keep N] SOURCE.pt POLICY_DIR
#
# SOURCE.pt is first validated with lcio-policy-info, which runs the server's own checks: an
# artifact the servers would refuse is never published (exit 1, nothing written). lcio-policy-info
# is found through $LCIO_POLICY_INFO, beside this script, or on PATH.
# POLICY_DIR/policy.pt is the file every server's --policy points at. It is only ever replaced by
# rename(2) from a fully written, fsync'd temporary file in the same directory, so a server (or a
# starting pod) sees either the old artifact or the new one, never a partial file. Each published
# artifact is also kept as POLICY_DIR/releases/<policy_version>.pt (the version GetPolicy, the logs
# and the dashboard show), newest N kept; rolling back is publishing one of those again.
#   --if-absent  do nothing when POLICY_DIR/policy.pt exists (seeding a fresh volume)
#   --keep N     releases to keep (default 10)
set -euo pipefail

if_absent=0
keep=10
while (($#)); do
  case "$1" in
    --if-absent) if_absent=1; shift ;;
    --keep) keep="$2"; shift 2 ;;
    --keep=*) keep="${1#--keep=}"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "publish-policy: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if (($# != 2)); then
  echo "usage: publish-policy.sh [--if-absent] [--keep N] SOURCE.pt POLICY_DIR" >&2
  exit 2
fi
src="$1"
dir="$2"
if ! [[ "$keep" =~ ^[1-9][0-9]*$ ]]; then
  echo "publish-policy: --keep must be a positive integer, got '$keep'" >&2
  exit 2
fi
if [[ ! -f "$src" || ! -s "$src" || ! -r "$src" ]]; then
  echo "publish-policy: source '$src' is not a readable non-empty file" >&2
  exit 1
fi
current="$dir/policy.pt"
if ((if_absent)) && [[ -e "$current" ]]; then
  echo "publish-policy: $current exists, leaving it (--if-absent)"
  exit 0
fi

validator="${LCIO_POLICY_INFO:-}"
if [[ -z "$validator" ]]; then
  beside="$(dirname "$(readlink -f "$0")")/lcio-policy-info"
  if [[ -x "$beside" ]]; then validator="$beside"; else validator="$(command -v lcio-policy-info || true)"; fi
fi
if [[ -z "$validator" || ! -x "$validator" ]]; then
  echo "publish-policy: lcio-policy-info not found (set LCIO_POLICY_INFO, or put it beside this" \
    "script or on PATH); it validates the artifact as the servers do before anything is published" >&2
  exit 1
fi
if ! info=$("$validator" --compact --device=cpu "$src" 2>&1); then
  echo "publish-policy: refusing '$src', which the servers would refuse too: ${info:0:1000}" >&2
  exit 1
fi
version=$(sed -n 's/.*"policy_version":"\([A-Za-z0-9._-]*\)".*/\1/p' <<<"$info")
if [[ -z "$version" ]]; then
  echo "publish-policy: '$src' has no usable policy_version in its metadata" >&2
  exit 1
fi
mkdir -p "$dir/releases"
# Write-then-rename inside the target directory: rename(2) is atomic only within one file system.
atomic_copy() {
  local from="$1" to="$2" tmp
  tmp=$(mktemp "$(dirname "$to")/.publish.XXXXXX")
  if cp "$from" "$tmp" && chmod 0644 "$tmp" && sync "$tmp" && mv -f "$tmp" "$to"; then
    sync "$(dirname "$to")"
  else
    rm -f "$tmp"
    echo "publish-policy: could not write $to" >&2
    return 1
  fi
}

release="$dir/releases/$version.pt"
if [[ ! -f "$release" ]]; then
  atomic_copy "$src" "$release"
fi
touch "$release"
atomic_copy "$release" "$current"
echo "publish-policy: published $version as $current"

# Prune old releases, never the one just published.
# Release names are policy versions ([A-Za-z0-9._-]), so newline-separated find output is safe.
mapfile -t old < <(find "$dir/releases" -maxdepth 1 -name '*.pt' -printf '%T@ %p\n' | sort -rn |
  tail -n +"$((keep + 1))" | cut -d' ' -f2-)
for f in "${old[@]}"; do
  [[ "$f" == "$release" ]] || rm -f "$f"
done
