#!/usr/bin/env bash
# CI: the package as a user gets it.  The wheel is built from the tracked files and installed without any extra
# into a fresh venv outside the checkout; from a folder there it enhances a photo on the CPU.  Then, with an mmcv
# (the [mmcv-lite] extra), it trains the demo and tests it.  The venv must not change while it works: nothing may
# land in site-packages.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sclle-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
VENV="$WORK/venv"
PY="$VENV/bin/python"
step() { echo "--- $(date +%T) $*"; }

step "wheel from the tracked files"
mkdir "$WORK/src"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$WORK/src"  # links (sclle_basicsr/files/) kept as links
"$PYTHON" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK/dist"/sclle_basicsr-*.whl)

step "plain install (no extra) into a fresh venv"
"$PYTHON" -m venv "$VENV"
"$PY" -m pip install -q "$WHEEL"
mkdir "$WORK/home"
cd "$WORK/home"  # outside the checkout: only the installed package can be imported
"$PY" - "$REPO" <<'PYEOF'
import importlib.metadata as md, os, sys
import sclle_basicsr
from sclle_basicsr.study import model_zoo
from sclle_basicsr.utils import package_files
assert 'site-packages' in sclle_basicsr.__file__, sclle_basicsr.__file__
for extra in ('onnxruntime', 'onnxruntime-gpu', 'onnx', 'openvino', 'mmcv', 'mmcv-lite', 'pytest'):
    try:
        sys.exit(f'a plain install brought {extra} {md.version(extra)}')
    except md.PackageNotFoundError:
        pass
repo_options = sorted(f'{d}/{n}' for d in os.listdir(f'{sys.argv[1]}/options')
                      for n in os.listdir(f'{sys.argv[1]}/options/{d}'))
assert package_files.option_files() == repo_options, (package_files.option_files(), repo_options)
entries = model_zoo.check_files()  # each weight file of the index: present, sha256, strict DCE-Net load
print(f'installed: {sclle_basicsr.__file__}; {len(repo_options)} option files; {len(entries)} zoo weights verified')
PYEOF
snapshot() { find "$VENV" -printf '%P %s %T@\n' | sort; }
snapshot > "$WORK/venv-before.txt"

step "enhance a photo on the CPU (plain install: backend auto runs torch and says so)"
"$PY" -c "
import numpy as np; from PIL import Image
Image.fromarray((np.random.default_rng(0).random((96, 128, 3)) * 60).astype(np.uint8)).save('dark.png')"
ZOO=$("$PY" -c 'from sclle_basicsr.utils.package_files import ZOO_DIR; print(ZOO_DIR)')
"$VENV/bin/sclle-enhance" -i dark.png -o enhanced --model_path "$ZOO/sclle_best_recipe_cosine_ema99_1k.pth" \
    --device cpu --quiet 2> enhance.err
cat enhance.err
test -s enhanced/dark.png
[ "$(grep -c 'backend auto runs torch on the CPU (fp32): onnxruntime is not installed' enhance.err)" = 1 ]
"$PY" -c "
import numpy as np; from PIL import Image
before, after = (np.asarray(Image.open(p)).astype(float).mean() for p in ('dark.png', 'enhanced/dark.png'))
assert after > before + 20, (before, after)
print(f'mean grey level {before:.1f} -> {after:.1f}')"

step "training without mmcv: one clear error"
if "$PY" -c "from sclle_basicsr.archs.segmentor_arch import FrozenDeepLabV3Plus
FrozenDeepLabV3Plus(allow_random_init=True)" 2> segmentor.err; then
    echo "the segmentor was built without mmcv" >&2; exit 1
fi
tail -1 segmentor.err
tail -1 segmentor.err | grep -q "ModuleNotFoundError: FrozenDeepLabV3Plus needs mmcv.*\[mmcv-lite\]"
diff "$WORK/venv-before.txt" <(snapshot)

step "with mmcv-lite: train the demo, copy the option files out, test the demo's network"
"$PY" -m pip install -q "$WHEEL[mmcv-lite]"
snapshot > "$WORK/venv-before.txt"
"$PY" -m sclle_basicsr.study.demo --total_iter 10 > demo.log 2>&1 || { tail -40 demo.log; exit 1; }
tail -5 demo.log
"$PY" -m sclle_basicsr.utils.package_files copy-options
"$PY" -m sclle_basicsr.test -opt options/test/test_SCLLLE_demo.yml > test.log 2>&1 || { tail -40 test.log; exit 1; }
grep -A1 'Validation demo_val' test.log
test -s experiments/SCLLLE_demo/models/net_g_latest.pth
test -s experiments/SCLLLE_demo/contact_sheet.png
[ "$(ls results/SCLLLE_demo_test/visualization/demo_val/*.png | wc -l)" = 3 ]
diff "$WORK/venv-before.txt" <(snapshot)
echo "wheel install: enhanced on the CPU without extras; trained and tested the demo in $WORK/home; venv unchanged"
