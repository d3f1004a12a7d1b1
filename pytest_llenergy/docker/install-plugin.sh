#!/bin/sh
# Install pytest-llenergy (copied to /opt/pytest-llenergy) and the given extra requirements into an
# engine image, holding the engine's own packages (HOLD="torch vllm ...") at the versions the image
# already has (a conflict fails the build instead of silently swapping the engine's torch), and the
# plugin's other dependencies at pytest_llenergy/docker/constraints.txt (so rebuilds do not drift).
set -eu
: "${HOLD:=torch}"
python3 -m pip list --format=freeze > /tmp/installed.txt
: > /tmp/hold.txt
cp /opt/pytest-llenergy/constraints.txt /tmp/constraints.txt
for name in $HOLD numpy; do
    pattern=$(printf '%s' "$name" | sed 's/[-_]/[-_]/g')
    if grep -i -E "^${pattern}==" /tmp/installed.txt >> /tmp/hold.txt; then
        # the image's version wins over the constraints file's
        grep -v -i -E "^${pattern}==" /tmp/constraints.txt > /tmp/constraints.new || true
        mv /tmp/constraints.new /tmp/constraints.txt
    fi
done
sort -u -o /tmp/hold.txt /tmp/hold.txt  # numpy may be named twice (in HOLD and always)
echo "holding: $(tr '\n' ' ' < /tmp/hold.txt)"
python3 -m pip install --no-cache-dir -c /tmp/hold.txt -c /tmp/constraints.txt "$@" "/opt/pytest-llenergy[nvml]"
rm -f /tmp/installed.txt /tmp/hold.txt /tmp/constraints.txt
python3 -c "import pytest_llenergy, pytest, pynvml; print('pytest-llenergy', pytest_llenergy.__version__)"
# The unprivileged user the image runs as (compose overrides the uid with PUID/PGID; /cache must
# then be writable by any uid, as it is here: the named volume is created from this directory).
if ! id lem >/dev/null 2>&1; then
    if command -v useradd >/dev/null 2>&1; then useradd --uid 1000 --no-create-home --home-dir /cache/home lem 2>/dev/null \
        || useradd --no-create-home --home-dir /cache/home lem; fi
fi
mkdir -p /cache/huggingface /cache/home /cache/torchinductor
chmod 1777 /cache /cache/huggingface /cache/home /cache/torchinductor
