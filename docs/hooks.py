"""MkDocs hooks: pages that must never be hand copies are generated at build time.

- `<!-- arguments: module.Class -->`: a table of the dataclass's fields from their own `help` metadata (the text
  `HfArgumentParser` prints), so the Arguments page cannot drift from the code.
- `<!-- include: FILE -->`: a repository file's text (the changelog, BENCHMARKS.md's answers), its links made
  relative to the page.
- `benchmarks/results/`: the committed results (plots, JSON, summaries) are published beside the pages that cite
  them. Pages link them as the repository lays them out (`../benchmarks/results/...` from `docs/`), so that the
  links work on GitHub too; the site's links are made relative to the published copies.
- `<!-- github-only -->`: a line for readers of the page on GitHub (where an include shows nothing), left out of
  the site.
"""

import dataclasses
import importlib
import os
import re

from hf_gradinit.arguments import help_names_default

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Repository files that are pages of the site.
ROOT_FILE_PAGES = {"README.md": "index.md", "BENCHMARKS.md": "benchmarks/index.md", "CHANGELOG.md": "changelog.md"}


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if help_names_default(value, f.metadata.get("help")):
        return "see its help"
    return f"`{value!r}`"


def arguments_table(path: str, only: str = "") -> str:
    """The fields of the dataclass at `path` ("package.module.Class"); with `only="own"`, those the class adds to
    its bases or changes (default or help)."""
    module, name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    inherited = {}
    if only == "own":
        for base in cls.__mro__[1:]:
            if dataclasses.is_dataclass(base):
                inherited.update({f.name: f for f in dataclasses.fields(base)})
    rows = ["| argument | default | help |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        base = inherited.get(f.name)
        if not f.init or base is not None and (_default(base), base.metadata) == (_default(f), f.metadata):
            continue
        help_text = " ".join(f.metadata.get("help", "").split()).replace("|", "\\|")
        rows.append(f"| `{f.name}` | {_default(f)} | {help_text} |")
    return "\n".join(rows)


def _include(name: str, page_path: str) -> str:
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        text = f.read()
    # Links written relative to the repository's root, made relative to the page's folder in docs/.
    page_dir = os.path.dirname(page_path)
    for root_file, page in ROOT_FILE_PAGES.items():
        text = text.replace(f"]({root_file})", f"](docs/{page})")
    text = text.replace("](benchmarks/results/", "](docs/benchmarks/results/")
    text = re.sub(
        r"\]\(docs/([^)#]+)",
        lambda m: "](" + os.path.relpath(m.group(1), page_dir or "."),
        text,
    )
    return text


def _results_link(target: str, page_path: str) -> str:
    """A link written relative to the page's file in the repository, made relative to the page in the site when it
    points into `benchmarks/results/` (published at the site's root, as in the repository)."""
    page_dir = os.path.dirname(page_path)
    in_repository = os.path.normpath(os.path.join("docs", page_dir, target))
    if not in_repository.startswith("benchmarks/results/"):
        return target
    return os.path.relpath(in_repository, page_dir or ".")


def on_page_markdown(markdown, page, config, files):
    markdown = "".join(
        line for line in markdown.splitlines(keepends=True) if not line.startswith("<!-- github-only -->")
    )
    markdown = re.sub(
        r"\]\(((?:\.\./)+benchmarks/results/[^)]+)\)",
        lambda m: "](" + _results_link(m.group(1), page.file.src_uri) + ")",
        markdown,
    )
    markdown = re.sub(
        r"<!-- arguments: ([\w.]+)(?: (\w+))? -->",
        lambda m: arguments_table(m.group(1), m.group(2) or ""),
        markdown,
    )
    return re.sub(r"<!-- include: ([\w./-]+) -->", lambda m: _include(m.group(1), page.file.src_uri), markdown)


def on_files(files, config):
    from mkdocs.structure.files import File

    results = os.path.join(ROOT, "benchmarks", "results")
    for folder, _, names in os.walk(results):
        for name in names:
            if name.endswith(".md"):  # results' own notes: read in the repository, not pages of the site
                continue
            path = os.path.relpath(os.path.join(folder, name), ROOT)
            files.append(
                File(path, src_dir=ROOT, dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"])
            )
    return files
