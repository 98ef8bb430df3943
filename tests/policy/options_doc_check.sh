#!/usr/bin/env bash
# Checks that docs/training.md lists exactly the options lcio-train has: the
# section between the "options" markers must equal
# `lcio-train --print_options_markdown` (generated from the option tables).
# Usage: options_doc_check.sh LCIO_TRAIN REPO_ROOT
set -euo pipefail
train=$1 repo=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$train" --print_options_markdown > "$tmp/generated.md"
sed -n '/^<!-- options:begin/,/^<!-- options:end/p' "$repo/docs/training.md" |
  sed '1d;$d' > "$tmp/documented.md"
if ! diff -u "$tmp/documented.md" "$tmp/generated.md"; then
  echo "docs/training.md's option list differs from the tables; regenerate it with" >&2
  echo "  lcio-train --print_options_markdown" >&2
  exit 1
fi
echo "docs/training.md lists every option as the tables declare it"
