#!/bin/sh
# Install Debian's bubblewrap (bwrap), the sandbox `course grade` runs every student kernel
# in. Uses apt-get as root or through sudo when it can; otherwise it says so and succeeds:
# `course grade` then refuses to grade until bubblewrap is there (or --no-sandbox is given).
if ! command -v bwrap >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "warning: no bubblewrap and no apt-get here; install bubblewrap (bwrap) yourself," \
             "or course grade will refuse to grade (unless --no-sandbox)" >&2
        exit 0
    fi
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            SUDO="sudo -n"
        else
            echo "warning: not root and no sudo; run 'sudo apt-get install bubblewrap'," \
                 "or course grade will refuse to grade (unless --no-sandbox)" >&2
            exit 0
        fi
    fi
    if ! { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
           { $SUDO apt-get update -qq >/dev/null 2>&1 && \
             DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap >/dev/null 2>&1; }; }; then
        echo "warning: apt-get could not install bubblewrap; course grade will refuse to grade (unless --no-sandbox)" >&2
        exit 0
    fi
fi
# Installed is not enough: the kernel must allow the namespaces.
if ! bwrap --unshare-all --unshare-user --die-with-parent --ro-bind / / true >/dev/null 2>&1; then
    echo "warning: bubblewrap is installed but cannot create namespaces here; allow unprivileged user" \
         "namespaces (sysctl kernel.unprivileged_userns_clone=1; Ubuntu 24.04:" \
         "sysctl kernel.apparmor_restrict_unprivileged_userns=0), or course grade will refuse to grade" >&2
fi
exit 0
