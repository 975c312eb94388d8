"""The documentation's code blocks, read from the pages as a user sees them (README.md, docs/)."""

import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


def pages() -> list[str]:
    """Every page with code a user reads: the README and the site's Markdown, relative to the repository."""
    found = glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
    return ["README.md"] + sorted(os.path.relpath(path, ROOT) for path in found)


def text(page: str) -> str:
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        return f.read()


def blocks(page: str) -> list[tuple[str, str, str]]:
    """(language, code, the text between the previous block and this one) for every fenced block of `page`."""
    found, start, source = [], 0, text(page)
    for match in FENCE.finditer(source):
        found.append((match.group(1), match.group(2), source[start : match.start()]))
        start = match.end()
    return found


def block(page: str, language: str = "python", index: int = 0) -> str:
    """The `index`-th block of `language` on `page`, exactly as written."""
    return [code for lang, code, _ in blocks(page) if lang == language][index]


def run_command(command: str, folder, timeout: int) -> subprocess.CompletedProcess:
    """A documented bash command, exactly as written, from `folder` (beside the repository's `examples/`, as from
    its root), with this venv's scripts first on PATH so that `python`, `torchrun` and `hf-gradinit` are its own."""
    os.symlink(os.path.join(ROOT, "examples"), os.path.join(folder, "examples"))
    scripts = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{scripts}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        ["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout
    )
