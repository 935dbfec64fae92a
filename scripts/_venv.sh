# Sourced by scripts/demo and scripts/test: create .venv beside the checkout and install the
# project into it (editable) with the extras named in $TUIVIEWER_EXTRAS.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TUIVIEWER_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.tuiviewer-installed-${TUIVIEWER_EXTRAS:-base}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null
    spec="$ROOT"
    [ -n "${TUIVIEWER_EXTRAS:-}" ] && spec="$ROOT[$TUIVIEWER_EXTRAS]"
    "$VENV/bin/python" -m pip install --quiet -e "$spec"
    touch "$stamp"
fi
# An editable install leaves the package uncompiled, and with PYTHONDONTWRITEBYTECODE set no
# run writes bytecode either: every start would compile every module again (~0.1 s for a
# `tuiviewer dump`). Only changed modules are compiled again.
"$VENV/bin/python" -m compileall -q "$ROOT/tuiviewer" >/dev/null
export PATH="$VENV/bin:$PATH"
