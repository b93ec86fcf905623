"""Build the seminar deck: ``slides/seminar.md`` + figures from the executed notebooks.

Why a builder and not ``nbconvert --to slides``: a 45-minute talk needs its own
order, wording and speaker notes, while every picture must come from running the
notebooks. So the talk's text lives in one markdown file, and a slide asks for a
figure or a printed output by the tag of the notebook cell that made it::

    {{figure 04_arme arme-feature-maps}}     the PNG the tagged cell drew
    {{output 10_evaluation syngait-table}}   the text the tagged cell printed

Slides are separated by a line ``---``; a line ``Note:`` starts the speaker notes.
Two columns: ``<div class="cols"><div>`` ... ``</div><div>`` ... ``</div></div>``, each
tag on its own line with blank lines around the markdown between them; inside
``<div class="short">`` ... ``</div>`` figures are lower, leaving room for an output below.
The deck is one HTML file with the figures embedded, next to a copy of reveal.js
(installed from the npm registry by ``make slides``), so it opens offline.

    python scripts/build_slides.py [--notebooks build/notebooks] [--out slides/build]
"""
from __future__ import annotations

import argparse
import html
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import mistune
import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "slides" / "seminar.md"
NPM_REVEAL = ROOT / "slides" / "node_modules" / "reveal.js" / "dist"
DECK_FILES = ("reset.css", "reveal.css", "theme/white.css", "reveal.js")
DIRECTIVE = re.compile(r"^\{\{(figure|output) (\S+) (\S+)\}\}$", re.MULTILINE)
DECK_NAME = "hstl_seminar.html"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<link rel="stylesheet" href="reveal/reset.css">
<link rel="stylesheet" href="reveal/reveal.css">
<link rel="stylesheet" href="reveal/theme/white.css">
<style>
.reveal {{ font-size: 30px; }}
.reveal h1 {{ font-size: 1.7em; text-transform: none; }}
.reveal h2 {{ font-size: 1.2em; }}
.reveal img.figure {{ max-height: 470px; margin: 0.2em auto; border: none; box-shadow: none; }}
.reveal pre.output {{ font-size: 0.55em; width: fit-content; max-width: 100%; margin: 0.4em auto; box-shadow: none; }}
.reveal pre.output code {{ max-height: 480px; white-space: pre-wrap; }}
.reveal .short img.figure {{ max-height: 330px; }}
.reveal :not(pre) > code {{ font-size: 0.8em; }}
.reveal table {{ font-size: 0.7em; }}
.reveal blockquote {{ width: 90%; font-size: 0.85em; }}
.reveal .cols {{ display: flex; gap: 1.2em; align-items: center; font-size: 0.85em; }}
.reveal .cols > div {{ flex: 1; min-width: 0; }}
</style>
</head>
<body>
<div class="reveal"><div class="slides">
{slides}
</div></div>
<script src="reveal/reveal.js"></script>
<script src="reveal/plugin/notes.js"></script>
<script>Reveal.initialize({{ hash: true, slideNumber: "c/t", plugins: [RevealNotes] }});</script>
</body>
</html>
"""


class SlideError(ValueError):
    """A slide asks for something the notebooks do not have."""


class Notebooks:
    """Executed notebooks by name (``04_arme``), their cells by tag."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, nbformat.NotebookNode] = {}

    def cell(self, name: str, tag: str) -> nbformat.NotebookNode:
        if name not in self._cache:
            path = self.folder / f"{name}.ipynb"
            if not path.is_file():
                raise SlideError(f"{path}: notebook not found")
            self._cache[name] = nbformat.read(path, as_version=4)
        for cell in self._cache[name].cells:
            if tag in cell.get("metadata", {}).get("tags", []):
                return cell
        raise SlideError(f"{self.folder / name}.ipynb: no cell tagged {tag!r}")

    def png(self, name: str, tag: str) -> str:
        """The cell's last PNG output, base64-encoded as notebooks store it."""
        images = [o["data"]["image/png"] for o in self.cell(name, tag).get("outputs", []) if "image/png" in o.get("data", {})]
        if not images:
            raise SlideError(f"{name}.ipynb, cell {tag!r}: no PNG output (was the notebook executed?)")
        return "".join(images[-1]).strip()

    def figure(self, name: str, tag: str) -> str:
        """The cell's last PNG as an ``<img>`` with the image embedded."""
        data = self.png(name, tag)
        return f'<img class="figure" alt="{html.escape(name)}: {html.escape(tag)}" src="data:image/png;base64,{data}">'

    def output(self, name: str, tag: str) -> str:
        """The text the cell printed, as a ``<pre>`` block."""
        texts = []
        for out in self.cell(name, tag).get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                texts.append("".join(out["text"]))
            elif "text/plain" in out.get("data", {}):
                texts.append("".join(out["data"]["text/plain"]))
        text = "".join(texts).rstrip()
        if not text:
            raise SlideError(f"{name}.ipynb, cell {tag!r}: printed nothing")
        return f'<pre class="output"><code>{html.escape(text)}</code></pre>'


def render_slide(source: str, notebooks: Notebooks, markdown: mistune.Markdown) -> str:
    """One ``<section>``: markdown, figure directives, speaker notes."""
    body, _, notes = source.partition("\nNote:")
    placeholders: dict[str, str] = {}

    def keep(match: re.Match) -> str:
        kind, name, tag = match.groups()
        key = f"SLIDEFIGURE{len(placeholders)}X"
        placeholders[key] = notebooks.figure(name, tag) if kind == "figure" else notebooks.output(name, tag)
        return key

    rendered = markdown(DIRECTIVE.sub(keep, body.strip()))
    for key, snippet in placeholders.items():
        rendered = rendered.replace(f"<p>{key}</p>", snippet).replace(key, snippet)
    if not notes.strip():
        raise SlideError(f"slide without speaker notes: {body.strip().splitlines()[0]!r}")
    return f'<section>\n{rendered}\n<aside class="notes">{markdown(notes.strip())}</aside>\n</section>'


def reveal_files() -> dict[str, Path]:
    """Each file the deck needs (path inside ``reveal/``) and where it is installed.

    reveal.js comes from the npm registry (``npm ci`` in ``slides/``); on a machine
    without Node.js, ``make`` installs the copy bundled in the ``sphinx-revealjs``
    Python package instead (reveal.js 5, whose theme loads its fonts from files).
    """
    if (NPM_REVEAL / "reveal.js").is_file():
        files = {name: NPM_REVEAL / name for name in DECK_FILES}
        files["plugin/notes.js"] = NPM_REVEAL / "plugin" / "notes.js"
        return files
    spec = importlib.util.find_spec("sphinx_revealjs")
    if spec is None or spec.origin is None:
        raise SlideError("reveal.js is not installed: `make slides` installs it (npm ci in slides/, or sphinx-revealjs without npm)")
    bundled = Path(spec.origin).parent / "_static" / "revealjs"
    files = {name: bundled / "dist" / name for name in DECK_FILES}
    files["plugin/notes.js"] = bundled / "plugin" / "notes" / "notes.js"
    fonts = bundled / "dist" / "theme" / "fonts"
    files.update({f"theme/fonts/{f.relative_to(fonts)}": f for f in fonts.rglob("*") if f.is_file()})
    return files


def build_slides(notebook_dir: Path, out_dir: Path, source: Path = SOURCE) -> Path:
    """Write ``out_dir/hstl_seminar.html`` and ``out_dir/reveal/``; return the deck's path.

    Notebooks are read from ``notebook_dir`` when it holds them (the executed copies of
    ``make seminar``), else from the committed, executed ``notebooks/``.
    """
    reveal = reveal_files()
    folder = notebook_dir if any(notebook_dir.glob("[0-9][0-9]_*.ipynb")) else ROOT / "notebooks"
    notebooks = Notebooks(folder)
    markdown = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
    parts = re.split(r"^---\s*$", source.read_text(encoding="utf-8"), flags=re.MULTILINE)
    slides = [render_slide(part, notebooks, markdown) for part in parts if part.strip()]
    title = parts[0].strip().splitlines()[0].lstrip("# ").strip()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, installed in reveal.items():
        target = out_dir / "reveal" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(installed, target)
    deck = out_dir / DECK_NAME
    tmp = deck.with_suffix(".tmp")
    tmp.write_text(PAGE.format(title=html.escape(title), slides="\n".join(slides)), encoding="utf-8")
    tmp.replace(deck)
    print(f"slides: {len(slides)} slides from {folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}")
    return deck


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", type=Path, default=ROOT / "build" / "notebooks")
    parser.add_argument("--out", type=Path, default=ROOT / "slides" / "build")
    args = parser.parse_args(argv)
    try:
        print(build_slides(args.notebooks, args.out))
    except SlideError as err:
        print(f"slides: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
