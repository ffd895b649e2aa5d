#!/usr/bin/env bash
# The issue 5 benchmark in one command (see bench/README.md):
#   bench/run.sh                  install what is missing, then the whole run (~12 min)
#   bench/run.sh --quick          1 s cells: checks the harness, not the figures
#   bench/run.sh profile          py-spy profile of `naftiko run` under c=32 REST load
#   bench/run.sh profile --target mcp
# Any other arguments go to bench/bench.py (`bench/run.sh --help`).
#
# Installs (idempotent): Debian nginx-light and wrk; a venv bench/.venv-fastmcp that sees the main
# environment's packages (--system-site-packages) and adds fastmcp==4.1.0, granian==2.8.9 (the
# server evaluation of issue 16, bench/granian_compare.py) and py-spy on top, so FastMCP runs on
# the very same mcp, starlette, uvicorn, uvloop and httptools as the runtime and the main
# environment is left untouched. The runtime itself must be installed (`pip install -e .`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv-fastmcp"
python="${PYTHON:-python3}"

need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v taskset >/dev/null || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bench: installing ${need_apt[*]} (apt-get)" >&2
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
    # Debian starts a system nginx on port 80 after installing; the benchmark runs its own.
    if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
        $sudo_cmd systemctl stop nginx || true
    fi
fi

if ! command -v naftiko >/dev/null; then
    echo "bench: installing the runtime (pip install -e $root)" >&2
    "$python" -m pip install -q -e "$root"
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import fastmcp, granian, sys; sys.exit(fastmcp.__version__ != '4.1.0' or granian.__version__ != '2.8.9')" 2>/dev/null \
        || [ ! -x "$venv/bin/py-spy" ]; then
    echo "bench: creating $venv (fastmcp==4.1.0, granian==2.8.9, py-spy; shares the main environment's packages)" >&2
    "$python" -m venv --system-site-packages "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "fastmcp==4.1.0" "granian==2.8.9" py-spy
fi

cd "$root"
exec "$python" "$here/bench.py" "$@"
