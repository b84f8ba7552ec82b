#!/usr/bin/env bash
# Prepares a checkout of cnn-introspect on a Debian/Ubuntu machine with Node.js >= 20.
# `npm run demo` runs it first; run it by hand as `npm run setup` or `bash scripts/setup.sh [options]`.
#
#   - Node packages: `npm install` (ONNXRUNTIME_NODE_INSTALL_CUDA=skip, so onnxruntime-node installs
#     offline with its CPU binary) when node_modules is missing or older than package.json /
#     package-lock.json. A stamp in node_modules records what was installed.
#   - Optional system packages, each installed only when missing and only when this user can
#     (root, or sudo without a password); otherwise it says what is missing and goes on:
#       dataset-fashion-mnist   Fashion-MNIST (/usr/share/datasets/fashion-mnist)
#       chromium                headless browser for the report rendering test
#       mesa-vulkan-drivers     Mesa's Vulkan drivers (software lavapipe) for the `webgpu` device tests on a
#                               machine without a GPU; Dawn needs Mesa >= 23, so on Debian 12 (bookworm) it
#                               comes from the bookworm-backports suite of the same Debian archive, which
#                               this script adds to apt's sources when it is missing
#     with --with-training also:
#       libopenblas0-pthread python3-torch   to retrain the models (scripts/train/train.py)
#       python3-onnx                         to regenerate the PyTorch reference fixtures
#                                            (scripts/reference/neuron_images.py)
#
# Idempotent, and quick when everything is present (no network access then). Never needs root.
#
# Options:
#   --with-training   also install the training packages (PyTorch from Debian)
#   --no-system       do not touch system packages (only report what is missing)
#   --force-npm       run npm install even when node_modules looks current
#   -h, --help        this text
set -euo pipefail
cd "$(dirname "$0")/.."

with_training=0
system=1
force_npm=0
for arg in "$@"; do
  case "$arg" in
    --with-training) with_training=1 ;;
    --no-system) system=0 ;;
    --force-npm) force_npm=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "${INTROSPECT_SETUP_NO_SYSTEM:-}" == 1 ]] && system=0

say() { printf 'setup: %s\n' "$*"; }

# --- Node.js ------------------------------------------------------------------------------------
if ! command -v node > /dev/null 2>&1; then
  say "Node.js is not installed; install Node.js 20 or newer (https://nodejs.org or your distribution) and rerun" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
  say "Node.js $(node --version) is too old; this project needs Node.js 20 or newer" >&2
  exit 1
fi

# --- system packages (optional) -------------------------------------------------------------------
is_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2> /dev/null)" == "install ok installed" ]]; }

as_root=()
can_install=0
if command -v apt-get > /dev/null 2>&1 && command -v dpkg-query > /dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]]; then
    can_install=1
  elif command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; then
    can_install=1
    as_root=(sudo -n)
  fi
fi

# purpose of each optional package, shown when it is missing
declare -A purpose=(
  [dataset-fashion-mnist]="Fashion-MNIST data set (optional)"
  [chromium]="headless browser for the report test (optional)"
  [mesa-vulkan-drivers]="Vulkan software driver for the webgpu device tests (optional)"
  [libopenblas0-pthread]="fast BLAS for PyTorch training (--with-training)"
  [python3-torch]="PyTorch for scripts/train/train.py (--with-training)"
  [python3-onnx]="ONNX reader for scripts/reference/neuron_images.py (--with-training)"
)
wanted=(dataset-fashion-mnist chromium mesa-vulkan-drivers)
((with_training)) && wanted+=(libopenblas0-pthread python3-torch python3-onnx)

# Dawn (onnxruntime's WebGPU provider) refuses Mesa before 23 ("shaderUniform*ArrayDynamicIndexing").
mesa_current() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2> /dev/null) || return 1
  [[ -n "$v" ]] && dpkg --compare-versions "$v" ge 23
}
codename=$(. /etc/os-release 2> /dev/null && echo "${VERSION_CODENAME:-}")

missing=()
if command -v dpkg-query > /dev/null 2>&1; then
  for p in "${wanted[@]}"; do
    if [[ $p == mesa-vulkan-drivers ]]; then mesa_current || missing+=("$p"); else is_installed "$p" || missing+=("$p"); fi
  done
else
  say "not a Debian-family system: skipping the optional system packages (${wanted[*]})"
fi

apt_updated=0
apt_install() {
  # one package at a time, so that one unavailable package does not hold back the others
  local p=$1
  local extra=()
  if [[ $p == mesa-vulkan-drivers ]]; then
    extra=(libvulkan1)
    if [[ $codename == bookworm ]]; then
      # Mesa >= 23 for bookworm is in bookworm-backports (same archive and keys as bookworm itself)
      if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        say "adding the bookworm-backports suite to apt's sources (for mesa-vulkan-drivers >= 23)"
        printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' 'Components: main' \
          'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | "${as_root[@]}" tee /etc/apt/sources.list.d/bookworm-backports.sources > /dev/null
        apt_updated=1
        "${as_root[@]}" apt-get update -q > /tmp/introspect-setup-apt.log 2>&1 || true
      fi
      extra+=(-t bookworm-backports)
    fi
  fi
  if DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends "$p" "${extra[@]}" > /tmp/introspect-setup-apt.log 2>&1; then
    return 0
  fi
  if ((!apt_updated)); then
    apt_updated=1
    say "refreshing the package lists (apt-get update)"
    "${as_root[@]}" apt-get update -q > /tmp/introspect-setup-apt.log 2>&1 || true
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends "$p" "${extra[@]}" > /tmp/introspect-setup-apt.log 2>&1 && return 0
  fi
  return 1
}

if ((${#missing[@]})); then
  if ((system && can_install)); then
    for p in "${missing[@]}"; do
      say "installing $p: ${purpose[$p]}"
      apt_install "$p" || say "could not install $p (see /tmp/introspect-setup-apt.log); continuing without it"
    done
  else
    why="not root and no password-less sudo"
    ((system)) || why="--no-system"
    say "these optional system packages are missing ($why); install them to use what they serve:"
    for p in "${missing[@]}"; do say "  apt-get install $p    # ${purpose[$p]}"; done
  fi
fi

# --- Node packages --------------------------------------------------------------------------------
stamp=node_modules/.introspect-setup
inputs_hash() { cat package.json package-lock.json 2> /dev/null | sha256sum | cut -d' ' -f1; }
want_hash=$(inputs_hash)
if ((force_npm)) || [[ ! -d node_modules ]] || [[ "$(cat "$stamp" 2> /dev/null)" != "$want_hash" ]]; then
  say "installing Node packages (npm install)"
  ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-audit --no-fund
  # npm install may rewrite the lock file; stamp what is there now
  inputs_hash > "$stamp"
else
  say "Node packages are current"
fi

say "ready"
