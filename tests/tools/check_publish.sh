#!/usr/bin/env bash
# deploy/docker/publish-policy.sh: an artifact the server would refuse is never published, and
# releases are named by the policy_version that GetPolicy and the dashboard show.
#   check_publish.sh SOURCE_DIR LCIO_POLICY_INFO GOOD_ARTIFACT
set -euo pipefail
src="${1:?usage: check_publish.sh SOURCE_DIR LCIO_POLICY_INFO GOOD_ARTIFACT}"
export LCIO_POLICY_INFO="${2:?}"
good="${3:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
publish="$src/deploy/docker/publish-policy.sh"
fail=0

echo hello >"$work/hello.pt"
if "$publish" "$work/hello.pt" "$work/dir" 2>"$work/err"; then
  echo "FAIL: a file containing 'hello' was published"
  fail=1
fi
grep -q "refusing" "$work/err" || { echo "FAIL: no reason given: $(cat "$work/err")"; fail=1; }
[[ ! -e "$work/dir/policy.pt" ]] || { echo "FAIL: policy.pt written for a refused artifact"; fail=1; }

"$publish" "$good" "$work/dir" >/dev/null
version=$("$LCIO_POLICY_INFO" --compact "$good" | sed -n 's/.*"policy_version":"\([^"]*\)".*/\1/p')
[[ -n "$version" ]] || { echo "FAIL: no policy_version"; fail=1; }
cmp -s "$good" "$work/dir/policy.pt" || { echo "FAIL: policy.pt is not the artifact"; fail=1; }
[[ -f "$work/dir/releases/$version.pt" ]] ||
  { echo "FAIL: release not named by policy_version: $(ls "$work/dir/releases")"; fail=1; }

# A refused artifact leaves the published one in place.
"$publish" "$work/hello.pt" "$work/dir" 2>/dev/null && fail=1
cmp -s "$good" "$work/dir/policy.pt" || { echo "FAIL: a refused publish replaced policy.pt"; fail=1; }
((fail == 0)) && echo "check_publish: OK"
exit "$fail"
