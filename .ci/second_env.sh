#!/usr/bin/env bash
# CI's second environment: a BasicSR user's venv with another torch/torchvision pair and no inference runtime.
# The plugin is installed into it as a user would (no constraints file; BasicSR's way, `python setup.py develop`,
# then the test extra); the script fails if that changes torch or torchvision or brings ONNX Runtime, checks with
# pip's resolver that a GPU user's onnxruntime-gpu stays alone, then runs a smoke subset of the tests there (import,
# registries, losses in stock models, training, the test runner, inference on the torch backend).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=$(realpath -m "${SECOND_VENV:-.venv-second}")  # absolute: the develop check runs from /
# PyPI's torch 2.13.0 ('===' passes over the local 2.13.0+cpu build: PyPI's torchvision 0.28.0 links torch's CUDA
# libraries, and beside the CPU build its import fails with "operator torchvision::nms does not exist").
TORCH_PAIR=${SECOND_TORCH_PAIR:-"torch===2.13.0 torchvision==0.28.0"}
PY="$VENV/bin/python"

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# The user's environment: their torch/torchvision, then basicsr (whose sdist build environment gets the same torch).
echo "$TORCH_PAIR" | tr ' ' '\n' > "$VENV/torch-pair.txt"
PIP_CONSTRAINT="$VENV/torch-pair.txt" "$PY" -m pip install -q $TORCH_PAIR basicsr
"$PY" -m pip freeze --all > "$VENV/freeze-before.txt"

# What pip plans for a user's install of the plugin: no torch, and no runtime unless an extra asks for one.  Beside
# onnxruntime-gpu (the [gpu] extra, or asked for with the plugin) the CPU build never comes: both are `onnxruntime`.
"$PY" -m pip install -q --dry-run --report "$VENV/plan.json" '.[mmcv-lite]' > /dev/null
"$PY" .ci/check_plan.py "$VENV/plan.json" --absent torch torchvision onnxruntime onnxruntime-gpu onnx openvino
"$PY" -m pip install -q --dry-run --report "$VENV/plan-gpu.json" '.[gpu,mmcv-lite]' > /dev/null
"$PY" .ci/check_plan.py "$VENV/plan-gpu.json" --absent torch onnxruntime --present onnxruntime-gpu onnx
"$PY" -m pip install -q --dry-run --report "$VENV/plan-beside-gpu.json" '.[mmcv-lite]' onnxruntime-gpu > /dev/null
"$PY" .ci/check_plan.py "$VENV/plan-beside-gpu.json" --absent torch onnxruntime --present onnxruntime-gpu

# BasicSR's convention (setuptools >= 77 reads this pyproject.toml), then the test extra into the same editable install
"$PY" -m pip install -q 'setuptools>=77'
"$PY" setup.py develop > "$VENV/develop.log" 2>&1 || { tail -40 "$VENV/develop.log"; exit 1; }
REPO=$PWD
(cd / && "$PY" -c "import sclle_basicsr, sys; sys.exit(None if sclle_basicsr.__file__.startswith('$REPO/') else
    f'setup.py develop: sclle_basicsr imported from {sclle_basicsr.__file__}, not from the checkout')")
"$PY" -m pip install -q -e '.[tests,mmcv-lite]'
"$PY" -m pip freeze --all > "$VENV/freeze-after.txt"
if grep -i '^onnxruntime' "$VENV/freeze-after.txt"; then
    echo "installing the plugin brought ONNX Runtime" >&2
    exit 1
fi

for pkg in torch torchvision; do
    before=$(grep -i "^$pkg==" "$VENV/freeze-before.txt")
    after=$(grep -i "^$pkg==" "$VENV/freeze-after.txt")
    if [ "$before" != "$after" ]; then
        echo "installing the plugin changed $pkg: $before -> $after" >&2
        exit 1
    fi
    echo "unchanged: $after"
done

"$PY" -m pytest -q -ra \
    tests/test_compat.py \
    tests/test_dcenet_arch.py \
    tests/test_options.py::test_option_file_parses_with_known_types \
    tests/test_scl_losses.py \
    tests/test_stock_model_losses.py \
    tests/test_mixing_options.py \
    tests/test_sr_with_scl_losses_model.py \
    tests/test_paired_contrastive_dataset.py \
    "tests/test_train_pipeline.py::test_training_logs_every_loss_saves_checkpoints_and_validates" \
    tests/test_test_pipeline.py \
    tests/test_inference.py \
    tests/test_package_files.py
