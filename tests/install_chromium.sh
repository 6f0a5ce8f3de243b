#!/bin/sh
# Install Debian's chromium and chromium-driver for the browser tests (tests/test_browser.py).
# Uses apt-get as root or through sudo when it can; otherwise it says so and succeeds: the
# browser tests then skip, except under CI=true, where they fail.
if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || \
                                               command -v chromium-browser >/dev/null 2>&1; }; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: no apt-get here; install Chromium and its driver yourself for the browser tests" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "note: not root and no sudo; apt-get install chromium chromium-driver for the browser tests" >&2
        exit 0
    fi
fi
if ! { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
       { $SUDO apt-get update -qq >/dev/null 2>&1 && \
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; }; }; then
    echo "note: apt-get could not install chromium and chromium-driver; the browser tests will skip (fail under CI)" >&2
fi
exit 0
