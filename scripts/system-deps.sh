#!/usr/bin/env bash
# Install the Debian packages that INT Studio needs outside Python, only where they are missing.
#
#   scripts/system-deps.sh [--check] [GROUP ...]      (default group: render)
#
# Groups:
#   render   headless OpenGL for pyrender: EGL through Mesa (software rasteriser llvmpipe when there
#            is no GPU) and OSMesa as the fallback platform
#   browser  Chromium and its WebDriver, for the browser tests of the Gradio app
#   media    ffmpeg, for encoding rendered clips
#   all      every group above
#
# Packages already installed are left alone: when nothing is missing the script prints nothing,
# fetches nothing and exits 0. Missing packages are installed with apt-get (no recommends) only when
# running as root and without --check; otherwise the script says what to install and exits 1.
# `apt-get update` runs only when the install needs fresh package lists. On a system without dpkg
# it names the packages to look for and exits 0 (there is nothing it can check).
set -euo pipefail

declare -A GROUP_PACKAGES=(
  [render]="libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libosmesa6"
  [browser]="chromium chromium-driver"
  [media]="ffmpeg"
)
GROUP_ORDER=(render browser media)

usage() {
  echo "usage: $0 [--check] [render|browser|media|all ...]   (default: render)" >&2
  exit 2
}

check_only=0
groups=()
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    -h|--help) usage ;;
    all) groups+=("${GROUP_ORDER[@]}") ;;
    *)
      [[ -n "${GROUP_PACKAGES[$arg]+x}" ]] || { echo "unknown group: $arg" >&2; usage; }
      groups+=("$arg")
      ;;
  esac
done
[[ ${#groups[@]} -eq 0 ]] && groups=(render)

wanted=()
for group in "${groups[@]}"; do
  read -r -a packages <<<"${GROUP_PACKAGES[$group]}"
  wanted+=("${packages[@]}")
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "system-deps: not a Debian-based system; make sure the equivalents of these are installed: ${wanted[*]}" >&2
  exit 0
fi

missing=()
for pkg in "${wanted[@]}"; do
  [[ " ${missing[*]} " == *" $pkg "* ]] && continue
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  [[ "$status" == ii* ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $check_only -eq 1 || $(id -u) -ne 0 ]]; then
  echo "system-deps: missing Debian packages: ${missing[*]}" >&2
  echo "system-deps: install them with: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
  # debconf's "delaying package configuration" note is noise on minimal images; errors still show.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    2> >(grep -v '^debconf: ' >&2)
}
echo "system-deps: installing ${missing[*]}" >&2
if ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null || ! apt_install 2>/dev/null; then
  apt-get update -qq >/dev/null
  apt_install
fi
