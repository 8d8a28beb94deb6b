# Sourced by scripts/demo and scripts/test: make .venv with Pulse installed (editable), plus extras.
# Re-installs only when pyproject.toml changed, so repeated runs start fast.
ensure_venv() {
  local extras="${1:-}" spec="." stamp
  [ -n "$extras" ] && spec=".[$extras]"
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Pulse needs Python 3.11 or newer; python3 is $(python3 --version 2>&1)" >&2
    return 1
  fi
  [ -x .venv/bin/python ] || python3 -m venv .venv
  local prefix
  prefix=".venv/.pulse-installed-$(sha256sum pyproject.toml | cut -c1-16)-"
  stamp="${prefix}${extras:-base}"
  # Every install of this pyproject.toml includes the base package: the demo runs in a dev .venv as it is.
  if [ -z "$extras" ] && compgen -G "${prefix}*" >/dev/null; then
    return 0
  fi
  if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
    rm -f .venv/.pulse-installed-*
    touch "$stamp"
  fi
}
