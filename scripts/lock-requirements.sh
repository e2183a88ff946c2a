#!/usr/bin/env bash
# Refreshes requirements.lock from requirements.txt: every package, including the ones pulled in
# by others, pinned to one version with the SHA-256 of each of its files. `make demo` and
# `make test` install from the lock with --require-hashes, so a fresh machine gets exactly what
# the tests saw. Run it (`make lock`) after editing requirements.txt, and commit both files.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
TOOLS="${TMPDIR:-/tmp}/twinportal-lock-tools"
if [ ! -x "$TOOLS/bin/pip-compile" ]; then
    "$PYTHON" -m venv "$TOOLS"
    "$TOOLS/bin/pip" install --quiet "pip-tools>=7.4,<8"
fi
"$TOOLS/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-find-links \
    --output-file requirements.lock requirements.txt
echo "requirements.lock refreshed ($(grep -c '==' requirements.lock) pinned packages)"
