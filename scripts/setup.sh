#!/usr/bin/env bash
# Sets up everything twinpacs and its tests need on a fresh Debian machine:
# DCMTK (the tests' independent DICOM clients), Chromium (the browser tests), Orthanc (the
# third-party archive the tests replicate to; its service left stopped) and a virtualenv with
# the pinned packages.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! command -v storescu >/dev/null 2>&1; then
  echo "setup: installing DCMTK (Debian package dcmtk)"
  apt_install dcmtk
fi

# The browser the page tests drive with Playwright (executable_path=/usr/bin/chromium): Debian's,
# never `playwright install`, which would download a browser build of its own.
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Chromium (Debian package chromium) for the browser tests"
  apt_install chromium
fi
# And Debian's Firefox ESR, which the tests drive over WebDriver BiDi (tests/firefox.py).
if [ ! -x /usr/bin/firefox-esr ]; then
  echo "setup: installing Firefox ESR (Debian package firefox-esr) for the browser tests"
  apt_install firefox-esr
fi

# Orthanc, the third-party archive of tests/thirdparty. The tests start their own instance
# from a config of their own, in a private network namespace; the package's system service
# would listen on every interface (Orthanc 1.10 cannot bind loopback only), so it must not
# start: a policy-rc.d answering 101 forbids service starts during the install, and the
# service is stopped and disabled afterwards in case it was started anyway.
if [ ! -x /usr/sbin/Orthanc ] && ! command -v Orthanc >/dev/null 2>&1; then
  echo "setup: installing Orthanc (Debian package orthanc), its system service left stopped"
  policy=/usr/sbin/policy-rc.d
  if [ -e "$policy" ]; then
    $SUDO mv "$policy" "$policy.twinpacs-saved"
  fi
  printf '#!/bin/sh\n# twinpacs setup: no service starts while packages install\nexit 101\n' \
    | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  restore_policy() {
    $SUDO rm -f "$policy"
    if [ -e "$policy.twinpacs-saved" ]; then $SUDO mv "$policy.twinpacs-saved" "$policy"; fi
  }
  trap restore_policy EXIT
  apt_install orthanc
  restore_policy
  trap - EXIT
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now orthanc >/dev/null 2>&1 || true
  fi
  if [ -x /etc/init.d/orthanc ]; then
    $SUDO /etc/init.d/orthanc stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null 2>&1 && $SUDO update-rc.d orthanc disable >/dev/null 2>&1 || true
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi

# The image viewer: frontend/ (Cornerstone3D, built with Vite) into src/twinpacs/web/static/viewer,
# which is not committed. Needs Node.js 20 or later; the npm packages are those pinned in
# frontend/package-lock.json (npm ci installs exactly those). Rebuilt when missing or older than
# its sources.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: the image viewer needs Node.js 20 or later with npm; found $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi
if [ ! -f frontend/node_modules/.package-lock.json ] \
   || [ frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]; then
  echo "setup: installing the viewer's npm packages (frontend/package-lock.json)"
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
fi
# The tests' OpenID Connect provider (panva/node-oidc-provider, pinned in its package-lock.json).
oidc_node=tests/security/oidc_node
if [ ! -f $oidc_node/node_modules/.package-lock.json ] \
   || [ $oidc_node/package-lock.json -nt $oidc_node/node_modules/.package-lock.json ]; then
  echo "setup: installing the test OpenID Connect provider ($oidc_node/package-lock.json)"
  (cd $oidc_node && npm ci --no-audit --no-fund --loglevel=error)
fi
viewer_manifest=src/twinpacs/web/static/viewer/.vite/manifest.json
if [ ! -f "$viewer_manifest" ] || [ -n "$(find frontend/src frontend/package.json frontend/package-lock.json \
     frontend/vite.config.ts frontend/tsconfig.json -newer "$viewer_manifest" -print -quit)" ]; then
  echo "setup: building the image viewer (frontend/ -> src/twinpacs/web/static/viewer)"
  build_log=$(mktemp)
  if ! (cd frontend && npm run build) >"$build_log" 2>&1; then
    cat "$build_log" >&2; rm -f "$build_log"
    echo "setup: the image viewer did not build (output above)" >&2
    exit 1
  fi
  rm -f "$build_log"
fi
