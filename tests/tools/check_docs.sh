#!/usr/bin/env bash
# The Markdown files' structure: every code fence is closed, a closing fence
# stands alone on its line (text after it would keep the block open and the
# rest of the file would render as code), and every relative link names a
# file or directory of the tree. The files use ``` fences only and inline
# links [text](path) without titles; those are what this reads. Links in
# code blocks and `code spans` are not links; /path is from the top.
#   check_docs.sh SOURCE_DIR
set -euo pipefail
export LC_ALL=C  # bytes, whatever the locale: a non-UTF-8 byte is not "binary"
src="${1:?usage: check_docs.sh SOURCE_DIR}"
cd "$src"
fail=0
mapfile -t files < <(find . -name '*.md' -not -path './build*' -not -path './.git/*' \
  -not -path '*/node_modules/*' | sort)
[[ ${#files[@]} -gt 10 ]] || { echo "FAIL: found only ${#files[@]} Markdown files"; exit 1; }
for f in "${files[@]}"; do
  # Fences: an opening one may name a language; a closing one is bare.
  awk -v file="$f" '
    /^ *```/ {
      if (!open) { open = 1; start = NR; next }
      if ($0 !~ /^ *```[ \t]*$/) { printf "FAIL: %s:%d: text after a closing fence\n", file, NR; bad = 1 }
      open = 0
    }
    END { if (open) { printf "FAIL: %s:%d: fence never closed\n", file, start; bad = 1 } exit bad }
  ' "$f" || fail=1
  # Relative links outside code: [text](path) or [text](path#anchor).
  dir=$(dirname "$f")
  while IFS= read -r target; do
    path=${target%%#*}
    [[ -z "$path" ]] && continue
    if [[ $path == /* ]]; then path=".$path"; else path="$dir/$path"; fi
    [[ -e "$path" ]] || { echo "FAIL: $f: link to $target: no such file"; fail=1; }
  done < <(awk '/^ *```/ { code = !code; next } !code { gsub(/`[^`]*`/, ""); print }' "$f" |
    grep -o '\]([^)[:space:]]*)' | sed 's/^](//; s/)$//' | grep -v -E '^[a-z][a-z0-9+.-]*:' || true)
done
[[ $fail == 0 ]] && echo "check_docs: ${#files[@]} Markdown files, fences and relative links fine"
exit $fail
