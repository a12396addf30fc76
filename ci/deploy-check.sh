#!/usr/bin/env bash
# Checks the Kubernetes and Agones manifests in deploy/k8s (ci/deploy_check.py says how),
# with kubernetes-validate and check-jsonschema's jsonschema from PyPI in a venv of their
# own. No cluster runs here: this is schema validation only (docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MMO_DEPLOY_VENV:-/tmp/mmo-deploy-venv}
if [ ! -x "$venv/bin/pip" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check \
    kubernetes-validate==1.37.0 jsonschema==4.23.0 PyYAML==6.0.2
"$venv/bin/python" ci/deploy_check.py
