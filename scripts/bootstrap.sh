#!/usr/bin/env bash
# Prints the path of a virtualenv holding everything ordersync needs, creating it
# on first use from requirements-dev.txt with the pinned constraints.txt.
# The environment is cached under ${ORDERSYNC_VENV_ROOT:-~/.cache/ordersync},
# keyed by the Python version and the requirement files, so a second checkout
# (or CI's fresh clone) reuses it and a changed pin builds a new one.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "bootstrap: $python not found (Python 3.11 is required)" >&2; exit 1; }
"$python" - <<'PY' || { echo "bootstrap: Python 3.11 or newer is required" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
key=$( { "$python" --version; cat "$here/requirements.txt" "$here/requirements-dev.txt" "$here/constraints.txt"; } \
      | sha256sum | cut -c1-16)
root=${ORDERSYNC_VENV_ROOT:-$HOME/.cache/ordersync}
venv="$root/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "bootstrap: creating $venv (first run takes a few minutes)" >&2
  rm -rf "$venv"
  mkdir -p "$root"
  "$python" -m venv "$venv"
  log="$root/install-$key.log"
  if ! { "$venv/bin/python" -m pip install --upgrade pip \
         && (cd "$here" && "$venv/bin/python" -m pip install -r requirements-dev.txt -c constraints.txt); } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "bootstrap: installing the requirements failed; full log: $log" >&2
    exit 1
  fi
  touch "$venv/.complete"
fi
echo "$venv"
