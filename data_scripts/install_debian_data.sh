#!/bin/sh
# Install Debian's dataset-fashion-mnist (the real Fashion-MNIST in MNIST's idx format,
# /usr/share/datasets/fashion-mnist), from which a4's offline stand-ins for CIFAR-10 and
# MNIST are made. Uses apt-get as root or through sudo when it can; otherwise it says so
# and succeeds anyway: without the package the stand-ins use scikit-learn's bundled digits.
PKG=dataset-fashion-mnist
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: no apt-get here; a4's offline data will use scikit-learn's digits instead of Fashion-MNIST" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "note: not root and no sudo; install $PKG yourself (apt-get install $PKG) for Fashion-MNIST," \
             "or a4's offline data will use scikit-learn's digits" >&2
        exit 0
    fi
fi
if ! { $SUDO apt-get install -y -qq "$PKG" >/dev/null 2>&1 || \
       { $SUDO apt-get update -qq >/dev/null 2>&1 && \
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$PKG" >/dev/null 2>&1; }; }; then
    echo "note: apt-get could not install $PKG; a4's offline data will use scikit-learn's digits" >&2
fi
exit 0
