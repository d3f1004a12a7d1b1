#!/bin/sh
# Install pytest-llenergy (copied to /opt/pytest-llenergy) and the given extra requirements into an
# engine image, holding the engine's own packages (HOLD="torch vllm ...") at the versions the image
# already has: a conflict fails the build instead of silently swapping the engine's torch.
set -eu
: "${HOLD:=torch}"
python3 -m pip list --format=freeze > /tmp/installed.txt
: > /tmp/hold.txt
for name in $HOLD; do
    pattern=$(printf '%s' "$name" | sed 's/[-_]/[-_]/g')
    grep -i -E "^${pattern}==" /tmp/installed.txt >> /tmp/hold.txt || true
done
echo "holding: $(tr '\n' ' ' < /tmp/hold.txt)"
python3 -m pip install --no-cache-dir -c /tmp/hold.txt "$@" "/opt/pytest-llenergy[nvml]"
rm -f /tmp/installed.txt /tmp/hold.txt
python3 -c "import pytest_llenergy, pytest, pynvml; print('pytest-llenergy', pytest_llenergy.__version__)"
mkdir -p /cache/huggingface /cache/home
chmod 1777 /cache /cache/huggingface /cache/home
