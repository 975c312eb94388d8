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


CONTINUES_QUICK_START = re.compile(r"continues\s+the\s+\[Quick\s+start\]\(quickstart\.md\)")


def page_script(page: str, quick_try: dict[str, str] | None = None) -> str:
    """The page's python blocks, top to bottom, as one script, after the Quick start's when the page says it
    continues it. `quick_try` ({"gradinit_iters=780": "gradinit_iters=40"}) swaps only what a block names, on the
    same line, as the number to change for a quick try ("40 for a quick try")."""
    code = "\n".join(code for lang, code, _ in blocks(page) if lang == "python")
    for old, new in (quick_try or {}).items():
        number = new.split("=", 1)[1]
        lines = [line for line in code.splitlines() if old in line]
        assert lines and all(f"{number} for a quick try" in line for line in lines), (page, old, lines)
        code = code.replace(old, new)
    if CONTINUES_QUICK_START.search(text(page)):
        code = block("docs/quickstart.md") + "\n" + code
    return code


def run_page(page: str, folder, quick_try=None, then: str = "", env=None, timeout: int = 900):
    """`page_script(page, quick_try)` in a fresh interpreter, from `folder` beside the repository's `examples/` (as
    from the repository's root), followed by `then`: code of the test's that reads what the page made."""
    if not os.path.exists(os.path.join(folder, "examples")):
        os.symlink(os.path.join(ROOT, "examples"), os.path.join(folder, "examples"))
    path = os.path.join(folder, "page.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page_script(page, quick_try) + "\n" + then)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, path], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
