#!/usr/bin/env bash
# Kubernetes manifests of deploy/k8s against the Kubernetes 1.27 and Prometheus Operator schemas,
# strict about unknown fields, plus cross-object wiring (validate_k8s.mjs). The pinned npm packages
# are installed into NPM_DIR by npm_install.sh. When a kubectl is on PATH, its `kubectl kustomize`
# output (what `kubectl apply -k` would send) is validated as well.
#   check_k8s.sh SOURCE_DIR NPM_DIR
set -euo pipefail
src="${1:?usage: check_k8s.sh SOURCE_DIR NPM_DIR}"
npm_dir="${2:?usage: check_k8s.sh SOURCE_DIR NPM_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
rc=0
"$here/npm_install.sh" "$npm_dir" || rc=$?
if ((rc != 0)); then exit "$rc"; fi
args=(--modules "$npm_dir" --k8s "$src/deploy/k8s" --rules "$src/deploy/prometheus/lcio-rules.yml")
if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  rendered=$(mktemp)
  trap 'rm -f "$rendered"' EXIT
  kubectl kustomize "$src/deploy/k8s" >"$rendered"
  echo "kubectl kustomize rendered $(grep -c '^kind:' "$rendered") objects"
  args+=(--rendered "$rendered")
else
  echo "note: no kubectl on PATH, validating the kustomization's files without rendering them"
fi
node "$here/validate_k8s.mjs" "${args[@]}"
