#!/usr/bin/env bash
# Run a command inside the project's virtual environment, creating it first if needed.
#   bash scripts/run.sh pytest
#   bash scripts/run.sh gdl-bench run benchmarks/quick.yaml
# Needs only Python 3.11 and pip. torch==2.13.0 is installed before anything else: with no torch present, a
# plain `torch` requirement pulls a multi-GB CUDA build. Set GDL_VENV to use another environment folder.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${GDL_VENV:-$here/.venv}"
py="${PYTHON:-python3}"
stamp="$venv/.gdl_installed"
if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating virtual environment in $venv" >&2
    "$py" -m venv "$venv"
fi
# Reinstall when the project's requirements changed since the last install.
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
    echo "[setup] installing torch==2.13.0 and gdl_graphs[test] (first run only)" >&2
    "$venv/bin/python" -m pip install -q --upgrade pip >&2
    "$venv/bin/python" -m pip install -q "torch==2.13.0" >&2
    "$venv/bin/python" -m pip install -q -e "$here[test]" >&2
    touch "$stamp"
fi
cd "$here"
export PATH="$venv/bin:$PATH"
# Stage the raw benchmark files shipped beside the checkout (../shared/data) into the default data root (the
# checkout's datasets/, whatever the working directory), copying only what is missing (processing writes next to
# the raw files, so this is a copy, not a link). With staged data present, tests that need it must run, not skip.
shared="$here/../shared/data"
if [ -z "${GDL_DATA:-}" ] && [ -d "$shared" ]; then
    mkdir -p "$here/datasets"
    cp -rn "$shared"/. "$here/datasets"/ 2>/dev/null || true
    chmod -R u+w "$here/datasets"
    export GDL_REQUIRE_DATA="${GDL_REQUIRE_DATA:-1}"
fi
if [ "$#" -eq 0 ]; then
    echo "usage: bash scripts/run.sh COMMAND [ARGS...]" >&2
    exit 2
fi
exec "$@"
