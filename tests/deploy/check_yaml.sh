#!/usr/bin/env bash
# yamllint (strict: warnings fail too) over every YAML file in deploy/, with deploy/.yamllint.yaml.
#   check_yaml.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: check_yaml.sh SOURCE_DIR}"
if ! command -v yamllint >/dev/null; then
  echo "SKIP: yamllint not found (Debian package: yamllint)"
  exit 77
fi
cd "$src"
yamllint --version
yamllint --strict --config-file deploy/.yamllint.yaml deploy
echo "check_yaml: $(find deploy -name '*.yml' -o -name '*.yaml' | wc -l) files clean"
