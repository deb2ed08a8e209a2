#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image
# (gradescope/autograder-base, Ubuntu 22.04). Gradescope's own harness uses the system
# python3, so the grader gets its own Python 3.11 and virtual environment in /opt.
set -euxo pipefail
SOURCE=/autograder/source
VENV=/opt/dlgrade/venv

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends software-properties-common bubblewrap
add-apt-repository -y ppa:deadsnakes/ppa
apt-get update
apt-get install -y --no-install-recommends python3.11 python3.11-venv
python3.11 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
# CPU wheels: the container has no GPU, and CPU torch imports in ~220 MB instead of ~640 MB.
"$VENV/bin/pip" install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1
"$VENV/bin/pip" install -c "$SOURCE/constraints.txt" "$SOURCE"
# The sandboxed worker runs as a uid of its own (never root): it must be able to read the venv.
chmod -R a+rX /opt/dlgrade
cp "$SOURCE/run_autograder" /autograder/run_autograder
chmod +x /autograder/run_autograder
