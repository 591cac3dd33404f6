#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, when apt-get is available and we may use it:
#   dataset-fashion-mnist  the real Fashion-MNIST as IDX .gz files in /usr/share/datasets/fashion-mnist
#   fonts-noto-color-emoji the Noto Color Emoji font, whose colour bitmaps are --dataset noto-emoji
#   chromium               headless browser for the UI tests (driven by the playwright Python package)
# Without them, the tests that need them skip with a reason.
set -euo pipefail
missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "note: no apt-get here; tests needing ${missing[*]} will skip" >&2; exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
