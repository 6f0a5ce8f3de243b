#!/bin/sh
# Install configurable-http-proxy (npm) into the venv for the JupyterHub tests
# (tests/service/test_hub.py): `npm install --global --prefix VENV` puts the command in
# VENV/bin, beside `jupyterhub`, where the Hub finds it on PATH. Needs Node.js and npm:
# taken from Debian (apt-get, as root or through sudo) when missing. Without them it says
# so and succeeds: the Hub tests then skip, except under CI=true, where they fail.
VENV="${1:-.venv}"
if [ -x "$VENV/bin/configurable-http-proxy" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    fi
    if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null 2>&1 || \
            { $SUDO apt-get update -qq >/dev/null 2>&1 && \
              DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null 2>&1; }
    fi
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "note: no npm here (apt-get install nodejs npm); the JupyterHub tests will skip (fail under CI)" >&2
    exit 0
fi
# configurable-http-proxy 5 is the proxy JupyterHub 5/6 is tested with.
if ! npm install --global --silent --no-audit --no-fund --prefix "$VENV" "configurable-http-proxy@^5" >/dev/null; then
    echo "note: npm could not install configurable-http-proxy; the JupyterHub tests will skip (fail under CI)" >&2
fi
exit 0
