#!/usr/bin/env bash
# Dockerfile checks that need no container engine:
#  1. check_dockerfiles.mjs: dockerfile-utils' linter and lcio's rules (see that file);
#  2. every package an apt-get install step names exists in Debian 12 (apt-cache);
#  3. the runtime stages hold what the binaries need: each shared object that ldd finds for the
#     locally built binaries comes from a package the final image installs, directly or as a
#     dependency, or from the base image's required packages;
#  4. the build stage's hand-off: `cmake --install` of the local build (as the build stage runs it,
#     into a DESTDIR) yields every file that the later stages COPY --from=build.
#   check_dockerfiles.sh SOURCE_DIR NPM_DIR [BUILD_DIR [NAME=BINARY...]]
# Without BUILD_DIR and binaries, steps 3 and 4 are left out (reported, not skipped silently).
set -euo pipefail
src="${1:?usage: check_dockerfiles.sh SOURCE_DIR NPM_DIR [BUILD_DIR [NAME=BINARY...]]}"
npm_dir="${2:?usage: check_dockerfiles.sh SOURCE_DIR NPM_DIR [BUILD_DIR [NAME=BINARY...]]}"
build_dir="${3:-}"
shift $(($# < 3 ? $# : 3))
here="$(cd "$(dirname "$0")" && pwd)"
rc=0
"$here/npm_install.sh" "$npm_dir" || rc=$?
if ((rc != 0)); then exit "$rc"; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node "$here/check_dockerfiles.mjs" --modules "$npm_dir" "$src" >"$work/packages"
fail=0

# 2. Packages exist in Debian's archive as apt sees it (needs apt lists: apt-get update).
if [[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit 2>/dev/null)" ]]; then
  cut -d' ' -f4- "$work/packages" | tr ' ' '\n' | sort -u >"$work/named"
  # One apt-cache call (each takes seconds): packages with an install candidate.
  # shellcheck disable=SC2046 # one package name per word
  apt-cache policy $(cat "$work/named") 2>/dev/null |
    awk '/^[^ ]/ { sub(":$", ""); p = $0 } /Candidate:/ && $2 != "(none)" { print p }' | sort -u >"$work/available"
  for p in $(comm -23 "$work/named" "$work/available"); do
    echo "FAIL: a Dockerfile installs $p, which is not a Debian package here"
    fail=1
  done
  echo "apt: $(wc -l <"$work/available") of the $(wc -l <"$work/named") packages named by the Dockerfiles exist"
else
  echo "note: no apt lists (run apt-get update): package names not checked against the archive"
fi

stage_packages() {  # stage_packages FILE STAGE...: the packages those stages install
  local file="$1"
  shift
  for s in "$@"; do awk -v f="$file" -v s="$s" '$2 == f && $3 == s { for (i = 4; i <= NF; i++) print $i }' "$work/packages"; done
}
closure() {  # the packages and everything they depend on, plus the base image's required set
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$@" 2>/dev/null | grep -v '^ ' | tr -d '<>' | sed 's/:.*//'
  dpkg-query -W -f='${Package} ${Priority}\n' | awk '$2 == "required" { print $1 }'
}
owners() {  # owners FILE...: "path package" for every file (merged /usr aware), one dpkg -S call
  local f alt
  for f in "$@"; do
    for alt in "$f" "$(readlink -f "$f")" "${f/#\/usr\/lib/\/lib}" "${f/#\/lib/\/usr\/lib}"; do
      printf '%s %s\n' "$f" "$alt"
    done
  done | sort -u >"$work/alts"
  # dpkg -S answers "pkg[:arch][, pkg2]: /path" for each path it knows.
  cut -d" " -f2 "$work/alts" | sort -u | { xargs dpkg -S 2>/dev/null || true; } |
    sed -E 's/^([^:,]+)(:[^,:]+)?(,[^:]*)?: (.*)$/\4 \1/' | sort -u >"$work/owned"
  awk 'NR == FNR { owner[$1] = $2; next } ($2 in owner) && !seen[$1]++ { print $1, owner[$2] }' \
    "$work/owned" "$work/alts"
}

if (($# == 0)); then
  echo "note: no binaries given: runtime libraries and the install hand-off are not checked"
else
  # 3. Runtime libraries.
  stage_packages Dockerfile runtime server | sort -u >"$work/server.list"
  stage_packages Dockerfile runtime trainer | sort -u >"$work/trainer.list"
  # shellcheck disable=SC2046 # one package name per word
  closure $(cat "$work/server.list") | sort -u >"$work/server.closure"
  # shellcheck disable=SC2046
  closure $(cat "$work/trainer.list") | sort -u >"$work/trainer.closure"
  for pair in "$@"; do
    name="${pair%%=*}"
    bin="${pair#*=}"
    case "$name" in
      lcio-server | lcio-client | lcio-loadgen | lcio-policy-info) image=server ;;
      *) image=trainer ;;
    esac
    if [[ ! -x "$bin" ]]; then
      echo "FAIL: $name: $bin is not an executable"
      fail=1
      continue
    fi
    mapfile -t libs < <(ldd "$bin" | awk '/=> \// { print $3 } /^\s*\/[^ ]+ \(/ { print $1 }')
    owners "${libs[@]}" >"$work/libs.owned"
    checked=0
    for lib in "${libs[@]}"; do
      pkg=$(awk -v l="$lib" '$1 == l { print $2 }' "$work/libs.owned")
      if [[ -z "$pkg" ]]; then
        echo "FAIL: $name needs $lib, which no Debian package ships (a library built in-tree must be static)"
        fail=1
      elif ! grep -qx "$pkg" "$work/$image.closure"; then
        echo "FAIL: $name needs $lib from $pkg, which the $image image does not install"
        fail=1
      fi
      checked=$((checked + 1))
    done
    echo "runtime: $name: $checked shared objects, all from packages of the $image image"
  done

  # 4. Install hand-off: the files the final stages COPY --from=build.
  if [[ -z "$build_dir" || ! -f "$build_dir/cmake_install.cmake" ]]; then
    echo "FAIL: build directory '$build_dir' has no cmake_install.cmake"
    fail=1
  else
    DESTDIR="$work/install" cmake --install "$build_dir" --prefix /usr/local >"$work/install.log" 2>&1 || {
      cat "$work/install.log"
      echo "FAIL: cmake --install failed"
      fail=1
    }
    for rel in $(grep -ho 'COPY --from=build /opt/lcio/usr/local/[^ ]*\( /opt/lcio/usr/local/[^ ]*\)*' "$src"/deploy/docker/Dockerfile |
      sed 's/^COPY --from=build //' | tr ' ' '\n' | sed 's|^/opt/lcio||' | sort -u); do
      # A binary this configuration does not build (e.g. LCIO_BUILD_POLICY=OFF) is not expected.
      if [[ "$rel" == /usr/local/bin/* ]] && ! printf '%s\n' "$@" | grep -q "^${rel##*/}="; then
        echo "note: $rel is not built here, not checked"
      elif [[ ! -e "$work/install$rel" ]]; then
        echo "FAIL: the Dockerfile copies $rel from the build stage, but cmake --install does not install it"
        fail=1
      fi
    done
    echo "install: cmake --install hands over $(find "$work/install" -type f | wc -l) files"
  fi
fi
((fail == 0)) || exit 1
echo "check_dockerfiles: OK"
