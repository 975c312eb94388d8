"""The documentation's code blocks, read from the pages as a user sees them (README.md, docs/)."""

import glob
import os
import re

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
