"""The image store never reads container state itself (ARCHITECTURE.md: imports flow one
way): nothing under rootless/image/ imports rootless.runtime, not even lazily. What
containers use reaches it from the CLI (rootless.image.removal.Usage)."""

import ast
import os

IMAGE = os.path.join(os.path.dirname(__file__), "..", "..", "rootless", "image")


def imported(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (node.module + "." + a.name for a in node.names)


def test_image_does_not_import_runtime():
    found = [(name, module) for name in sorted(os.listdir(IMAGE)) if name.endswith(".py")
             for module in imported(os.path.join(IMAGE, name))
             if module == "rootless.runtime" or module.startswith("rootless.runtime.")]
    assert found == []
