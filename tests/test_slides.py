"""The seminar deck, opened in a real browser: every slide rendered, nothing fails to load.

The deck is built from ``slides/seminar.md`` and the committed notebooks into a
temporary folder, then opened by headless Chromium twice:

* ``--dump-dom`` after 10 s of virtual time, with Chromium's log on stderr
  (``--enable-logging=stderr --v=1``): reveal.js marked the deck ``ready`` and gave
  every slide its ``past``/``present``/``future`` class, and the log names no failed
  request. Chromium does not log a missing ``file://`` resource at all, so the page is
  opened through a copy with one extra script at the top of ``<head>`` that reports
  every resource error to the console as "Failed to load resource" and marks the page
  when its ``load`` event fired.
* ``--screenshot`` of the title slide, kept as ``slides/build/title.png``.

Skipped, with the reason, where Chromium or reveal.js is not installed (``make test``
installs both where it can) or where the deck cites a notebook not in the repository yet.
"""
from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from hstl_core.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))

from build_slides import DIRECTIVE, SOURCE, SlideError, build_slides, reveal_files  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
TITLE_PNG = REPO_ROOT / "slides" / "build" / "title.png"
PROBE = """<script>
addEventListener("error", (event) => {
  const url = event.target && (event.target.src || event.target.href);
  if (url) console.error("Failed to load resource: " + url);
}, true);
addEventListener("load", () => document.documentElement.setAttribute("data-probe-loaded", "yes"));
</script>
"""
# Lines of Chromium's log that mean a request of the page failed. The browser's own
# account service (google_apis/) still tries the network despite the flags; its
# failures say nothing about the deck.
FAILED = re.compile(r"ERR_FILE_NOT_FOUND|net::ERR_|Failed to load resource|Uncaught")
BROWSER_OWN = "google_apis/"


def slide_count() -> int:
    """Slides in seminar.md, counted the way the builder splits them."""
    parts = re.split(r"^---\s*$", SOURCE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return sum(1 for part in parts if part.strip())


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run headless Chromium once on ``url`` with a fresh profile."""
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


class References(HTMLParser):
    """Every ``src`` and ``href`` attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.fixture(scope="module")
def deck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not installed (make test installs it where apt-get and root are available)")
    try:
        reveal_files()
    except SlideError as err:
        pytest.skip(str(err))
    cited = {name for _, name, _ in DIRECTIVE.findall(SOURCE.read_text(encoding="utf-8"))}
    missing = sorted(name for name in cited if not (REPO_ROOT / "notebooks" / f"{name}.ipynb").is_file())
    if missing:
        pytest.skip(f"the deck cites notebooks not in the repository yet: {', '.join(missing)}")
    return build_slides(REPO_ROOT / "notebooks", tmp_path_factory.mktemp("slides"), source=SOURCE)


@pytest.fixture(scope="module")
def rendered(deck: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The DOM after reveal.js ran, and Chromium's log, for the deck plus the probe."""
    html = deck.read_text(encoding="utf-8")
    probe = deck.with_name("probe.html")
    probe.write_text(html.replace("<head>\n", "<head>\n" + PROBE, 1), encoding="utf-8")
    result = chromium(probe.as_uri(), tmp_path_factory.mktemp("profile"), "--enable-logging=stderr", "--v=1",
                      "--virtual-time-budget=10000", "--dump-dom")
    return result.stdout, result.stderr


def test_reveal_renders_every_slide(rendered: tuple[str, str]) -> None:
    dom, _ = rendered
    reveal = re.search(r'<div class="(reveal [^"]*)"', dom)
    assert reveal and "ready" in reveal.group(1).split(), "reveal.js did not initialise the deck"
    sections = re.findall(r"<section\b[^>]*>", dom)
    assert len(sections) == slide_count()
    for number, tag in enumerate(sections):
        classes = re.search(r'class="([^"]*)"', tag)
        states = set(classes.group(1).split()) if classes else set()
        assert states & {"past", "present", "future"}, f"slide {number} not laid out by reveal.js: {tag}"


def test_every_reference_is_a_local_file_or_embedded(deck: Path) -> None:
    parser = References()
    parser.feed(deck.read_text(encoding="utf-8"))
    assert parser.urls, "the deck references nothing: not a reveal.js page"
    for url in parser.urls:
        if url.startswith(("data:", "#")):
            continue
        assert "://" not in url and not url.startswith("//"), f"{url}: the deck must open offline"
        assert (deck.parent / url).is_file(), f"{url}: not next to the deck"


def test_no_request_fails_in_the_browser(rendered: tuple[str, str]) -> None:
    dom, log = rendered
    assert 'data-probe-loaded="yes"' in dom, "the page's load event never fired"
    failures = [line for line in log.splitlines() if FAILED.search(line) and BROWSER_OWN not in line]
    assert not failures, "\n".join(failures)


def test_title_slide_screenshot(deck: Path, tmp_path: Path) -> None:
    TITLE_PNG.parent.mkdir(parents=True, exist_ok=True)
    TITLE_PNG.unlink(missing_ok=True)
    chromium(f"{deck.as_uri()}#/0", tmp_path / "profile", "--hide-scrollbars", "--window-size=1280,720",
             "--virtual-time-budget=10000", f"--screenshot={TITLE_PNG}")
    image = matplotlib.image.imread(TITLE_PNG)
    assert image.shape[:2] == (720, 1280)
    assert np.ptp(image[..., :3]) > 0.5, "the title slide is blank"
