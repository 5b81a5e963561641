#!/usr/bin/env bash
# Bring this machine to a working mmdssd stack, idempotently.
#
#   bash tools/install.sh            # venv in ./.venv (override with MMDSSD_VENV=/path)
#
# First run: the mmcv 2.1.0 source build dominates (~21 min on 2 cores). Later runs on
# the same machine reuse pip's cached wheel and finish in well under 2 minutes.
# See README.md "Stack workarounds" for why each step looks the way it does.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${MMDSSD_VENV:-$ROOT/.venv}
PYTHON_BIN=${PYTHON:-python3.11}
command -v "$PYTHON_BIN" >/dev/null || PYTHON_BIN=python3

if [ ! -x "$VENV/bin/python" ]; then
    echo "[install] creating venv $VENV"
    "$PYTHON_BIN" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

# 1. torch: leave a supported existing torch alone (e.g. a user's CUDA build), else pin.
if ! "$PY" - <<'PYEOF' 2>/dev/null
import sys
import torch
from packaging.version import Version
v = Version(torch.__version__.split('+')[0])
sys.exit(0 if Version('2.0') <= v < Version('2.14') else 1)
PYEOF
then
    echo "[install] installing torch (requirements/torch.txt)"
    "${PIP[@]}" -r requirements/torch.txt
fi

# 2. build requirements, then mmcv with its compiled ops against the installed torch.
"${PIP[@]}" -r requirements/build.txt
if ! "$PY" -c "import mmcv, mmcv.ops, mmcv._ext; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
    echo "[install] building mmcv 2.1.0 with ops (first time: ~21 min; cached afterwards)"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "${PIP[@]}" --no-build-isolation -r requirements/mminstall.txt
    "$PY" -c "import mmcv._ext" || { echo "[install] mmcv built without ops" >&2; exit 1; }
else
    "${PIP[@]}" -r requirements/mminstall.txt
fi

# 3. runtime + mim (without opendatalab/openxlab, which downgrade setuptools/requests/rich).
"${PIP[@]}" -r requirements/runtime.txt -r requirements/tests.txt -r requirements/extras.txt \
    -r requirements/deploy.txt
"${PIP[@]}" --no-deps openmim==0.3.9

# 4. mmdssd itself: a regular (non-editable) install so mim finds
#    <site-packages>/mmdssd/.mim/{configs,tools}.
"${PIP[@]}" --no-deps --no-build-isolation --force-reinstall "$ROOT"
"$PY" -c "import mmdssd, mmdet, mmcv, mmengine, torch; print('[install] ok: torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmengine', mmengine.__version__, 'mmdssd', mmdssd.__version__)"
