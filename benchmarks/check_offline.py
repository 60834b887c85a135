"""Check that a published asv dashboard renders without internet access.

    python benchmarks/check_offline.py [HTML_DIR]     (default: .asv/html)

Fails (exit 1) when any ``.html`` page under HTML_DIR still loads a script or a
stylesheet from the network (``http://``, ``https://`` or protocol-relative
``//`` in ``<script src>`` or ``<link rel=stylesheet|preload|modulepreload|icon href>``),
when a local CSS file pulls something remote through ``url(...)`` or ``@import``,
or when a local script or stylesheet a page references is missing. Links a reader
clicks (``<a href>``) and the Atom feed link are not loads and are allowed.

benchmarks/publish.sh runs it on the dashboard it publishes. asv imports every
module in benchmarks/ during discovery: this one does nothing on import.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)   # http://, https://, //
LOADING_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut"}
CSS_REMOTE = re.compile(
    r"""url\(\s*['"]?\s*((?:[a-z][a-z0-9+.-]*:)?//[^'")\s]*)|@import\s+['"]((?:[a-z]+:)?//[^'"]*)""",
    re.IGNORECASE)


class _Loads(HTMLParser):
    """Collects (tag, attribute, url) for every script and stylesheet a page loads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "script" and values.get("src"):
            self.loads.append(("script", "src", values["src"]))
        elif tag == "link" and values.get("href"):
            rels = set(values.get("rel", "").lower().split())
            if rels & LOADING_RELS:
                self.loads.append(("link", "href", values["href"]))

    handle_startendtag = handle_starttag


def problems(html_dir: Path) -> list[str]:
    """Every remote load and missing local script or stylesheet under `html_dir`."""
    found: list[str] = []
    pages = sorted(html_dir.rglob("*.html"))
    if not pages:
        return [f"{html_dir}: no .html pages (was the dashboard published?)"]
    for page in pages:
        parser = _Loads()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for tag, attribute, url in parser.loads:
            where = f"{page.relative_to(html_dir)}: <{tag} {attribute}={url!r}>"
            if REMOTE.match(url):
                found.append(f"{where} loads from the network")
                continue
            parts = urlsplit(url)
            if parts.scheme or not parts.path:        # data:, javascript: ...
                continue
            if not (page.parent / unquote(parts.path)).is_file():
                found.append(f"{where} names a file that is not there")
    for css in sorted(html_dir.rglob("*.css")):
        for match in CSS_REMOTE.finditer(css.read_text(encoding="utf-8", errors="replace")):
            found.append(f"{css.relative_to(html_dir)}: loads {match.group(1) or match.group(2)}")
    return found


def main(argv: list[str]) -> int:
    html_dir = Path(argv[1] if len(argv) > 1 else ".asv/html")
    if not html_dir.is_dir():
        print(f"check_offline: {html_dir} is not a directory", file=sys.stderr)
        return 2
    found = problems(html_dir)
    for problem in found:
        print(f"check_offline: {problem}", file=sys.stderr)
    if found:
        print(f"check_offline: FAILED, {len(found)} network or missing loads in {html_dir}",
              file=sys.stderr)
        return 1
    pages = len(list(html_dir.rglob("*.html")))
    print(f"check_offline: ok, {pages} pages in {html_dir} load no script or stylesheet "
          "from the network")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
