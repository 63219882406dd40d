#!/usr/bin/env bash
# Puts the kiosk stage and a clean copy of this repository into a pi-gen
# checkout, ready for: STAGE_LIST="stage0 stage1 stage2 stage-kiosk" ./build.sh
set -euo pipefail

case ${1:-} in
    -h | --help)
        echo "Usage: $0 PI_GEN_DIR"
        exit 0
        ;;
    "")
        echo "Usage: $0 PI_GEN_DIR" >&2
        exit 2
        ;;
esac
pi_gen=$1
[[ -x $pi_gen/build.sh && -d $pi_gen/stage2 ]] ||
    { echo "==> error: $pi_gen is not a pi-gen checkout" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
stage=$pi_gen/stage-kiosk
files=$stage/00-install-agent/files/kiosk-agent

echo "==> copying the kiosk stage to $stage"
rm -rf "$stage"
cp -a "$here/stage-kiosk" "$stage"

echo "==> copying kiosk-agent sources to $files"
mkdir -p "$files"
tar -C "$repo" --exclude=./.git --exclude=./.venv --exclude=__pycache__ \
    --exclude='*.egg-info' --exclude=./build --exclude=./dist \
    --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.mypy_cache \
    -cf - . | tar -C "$files" -xf -

# Only the kiosk image is wanted, not the plain Lite one as well.
touch "$pi_gen/stage2/SKIP_IMAGES"
echo "==> ready: in $pi_gen, add STAGE_LIST=\"stage0 stage1 stage2 stage-kiosk\" to config"
