"""kafkajs, the Node.js Kafka client, for the tests: its scripts live in
test/js and it is installed there from the npm registry."""

import os
import shutil
import subprocess

import pytest

JS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "js")


def ensure_kafkajs():
    """Path of node, with kafkajs installed in test/js (npm install if
    missing); skips if that is impossible."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")):
        return node
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("test/js/node_modules/kafkajs is missing and npm is not installed")
    res = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", JS_DIR],
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0 or not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")):
        pytest.skip("test/js/node_modules/kafkajs is missing and npm install failed: "
                    + (res.stderr or res.stdout).strip()[-500:])
    return node
