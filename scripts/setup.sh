#!/usr/bin/env bash
# Set up a fresh Debian machine: system packages, a virtual environment in .venv and the project.
# Usage: bash scripts/setup.sh        (engine, CLI, ffmpeg filter, napari plugin, test tools)
#        bash scripts/setup.sh --cli  (engine, CLI and ffmpeg filter only: no napari, no Xvfb)
# Quiet: one line per step; apt and pip speak only on errors.
set -euo pipefail
cd "$(dirname "$0")/.."
cli_only=0
[ "${1:-}" = "--cli" ] && cli_only=1

need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
if ((!cli_only)); then
    command -v Xvfb >/dev/null || need_apt+=(xvfb xauth)
    # GL / Qt xcb libraries napari needs under Xvfb (see docs/ecosystem notes).
    for pkg in libgl1-mesa-dri libegl1 libgl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 \
               libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 \
               libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1 \
               libxkbcommon0; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
    done
fi
python3 -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
if ((${#need_apt[@]})); then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "setup: installing system packages: ${need_apt[*]}" >&2
    # env after sudo: sudo drops DEBIAN_FRONTEND; debconf's apt-utils notice is not an error
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need_apt[@]}" >/dev/null 2> >(grep -v -e "^debconf: " -e "apt-utils" >&2)
fi
# pip: no version nag, no root-user warning, no script-location warning
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_WARN_SCRIPT_LOCATION=1

[ -x .venv/bin/python ] || python3 -m venv .venv
PY=.venv/bin/python
$PY -m pip install -q --upgrade pip >/dev/null
# CPU torch first, so no CUDA wheels are pulled in by the resolver.
$PY -c "import torch" 2>/dev/null || $PY -m pip install -q "torch==2.13.0" 2> >(grep -v "^WARNING: Location" >&2) \
    || $PY -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
# (the machine's pip config lists a local index whose empty entries pip warns about: hide those)
extras="[napari,dask,dev]"
((cli_only)) && extras=""
echo "setup: installing napari-vmm${extras} into .venv" >&2
$PY -m pip install -q -e ".${extras}" 2> >(grep -v "^WARNING: Location" >&2)
echo "setup: done ($($PY -c 'import napari_vmm, torch; print("napari-vmm", napari_vmm.__version__, "torch", torch.__version__)'))" >&2
