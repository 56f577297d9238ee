"""A real check of a static HTML report, in place of a headless browser.

The page is parsed with html5lib in strict mode -- the WHATWG parsing algorithm browsers use,
failing on any parse error instead of recovering from it -- and then: a title; no script, frame,
plugin, event-handler attribute or ``javascript:`` URL (nothing that could raise a script error);
no external resource; every link resolves; every image is inside the page (a ``data:`` URL: the
page is the whole report) and decodes as a PNG of the size the page gives it, with real content
(not blank, not one flat colour); every table sits in a horizontally scrolling container.

:func:`measure_in_browser` lays the page out in a real headless browser, where there is one.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import html5lib
import numpy as np
from PIL import Image

EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ACTIVE = {"script", "iframe", "frame", "object", "embed", "applet", "form", "base"}


def parse_strict(page: Path):
    """The page's element tree; raises ``html5lib.html5parser.ParseError`` on any parse error."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    return parser.parse(page.read_bytes())


def text_of(element) -> str:
    return "".join(element.itertext()).strip()


def tables_by_caption(tree) -> dict[str, list[list[str]]]:
    """Every table of the page as rows of cell texts (header row first), by caption."""
    out = {}
    for table in tree.iter("table"):
        caption = table.find("caption")
        rows = [[text_of(cell) for cell in row if cell.tag in ("th", "td")]
                for row in table.iter("tr")]  # fmt: skip
        out[text_of(caption) if caption is not None else ""] = rows
    return out


def check_png(path: Path | io.BytesIO, width: int, height: int, name: str = "") -> None:
    name = name or path.name
    with Image.open(path) as image:
        assert image.format == "PNG", f"{name}: not a PNG but {image.format}"
        image.verify()  # the whole file: chunks and checksums
    if isinstance(path, io.BytesIO):
        path.seek(0)
    with Image.open(path) as image:
        image.load()  # and it decodes
        assert image.size == (width, height), f"{name}: {image.size} != {(width, height)}"
        grey = np.asarray(image.convert("L"), dtype=float)
        colours = len(image.convert("RGB").getcolors(maxcolors=1 << 20) or [])
    inked = float((grey < 245).mean())
    assert inked > 0.02, f"{name}: almost blank ({inked:.1%} of the pixels are not white)"
    assert grey.std() > 10, f"{name}: one flat colour"
    assert colours > 20, f"{name}: only {colours} colours: no real figure"


def ancestors(tree, element) -> list:
    """``element``'s ancestors, nearest first (ElementTree keeps no parent links)."""
    parents = {child: parent for parent in tree.iter() for child in parent}
    chain = []
    while element in parents:
        element = parents[element]
        chain.append(element)
    return chain


def check_static_page(page: Path) -> dict:
    """Everything the module docstring lists; returns what was checked (images, links)."""
    tree = parse_strict(page)
    title = tree.find("head/title")
    assert title is not None and text_of(title), "the page has no title"
    ids = {e.get("id") for e in tree.iter() if e.get("id")}
    images, links = [], []
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue  # comments
        assert element.tag not in _ACTIVE, f"active content <{element.tag}> in the page"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"event handler {name}= on <{element.tag}>"
            assert "javascript:" not in value.lower(), f"javascript: URL in {name}="
        if element.tag == "link":
            raise AssertionError(f"external resource <link href={element.get('href')!r}>")
        if element.tag == "img":
            assert element.get("alt"), f"image {element.get('src')[:40]!r} has no alt text"
            prefix = "data:image/png;base64,"
            assert element.get("src", "").startswith(prefix), "an image outside the page"
            png = io.BytesIO(base64.b64decode(element.get("src")[len(prefix) :], validate=True))
            check_png(png, int(element.get("width")), int(element.get("height")),
                      element.get("alt"))  # fmt: skip
            images.append(element.get("alt"))
            continue
        if element.tag == "table":
            scrolled = [a for a in ancestors(tree, element) if a.get("class") == "scroll"]
            assert scrolled, f"a table outside a scroll container: {text_of(element)[:60]!r}"
        for attribute in ("src", "href"):
            url = element.get(attribute)
            if url is None:
                continue
            parsed = urlparse(url)
            assert not parsed.scheme and not parsed.netloc, f"external reference {url!r}"
            if url.startswith("#"):
                assert url[1:] in ids, f"broken anchor {url!r}"
                continue
            target = page.parent / unquote(parsed.path)
            assert target.is_file(), f"broken reference {url!r}"
            links.append(target)
    assert images, "the page shows no figure"
    css = "".join(text_of(style) for style in tree.iter("style"))
    assert re.search(r"\.scroll\s*\{[^}]*overflow-x:\s*auto", css), "no scrolling container"
    return {"tree": tree, "images": images, "links": links}


#: Set on <body> by :data:`_MEASURE`: the elements whose right edge passes the viewport and
#: that no horizontally scrolling container holds, and the page's own overflow.
_MEASURE = """<script>
const width = document.documentElement.clientWidth;
const scrolls = (e) => ["auto", "scroll"].includes(getComputedStyle(e).overflowX);
const clipped = [];
for (const e of document.body.querySelectorAll("*")) {
  if (e.getBoundingClientRect().right <= width + 0.5) continue;
  let up = e.parentElement, held = false;
  while (up && up !== document.body) {
    if (scrolls(up)) { held = true; break; }
    up = up.parentElement;
  }
  if (!held) clipped.push(e.tagName.toLowerCase() + (e.className ? "." + e.className : ""));
}
const hidden = {};
for (const e of document.querySelectorAll(".scroll")) {
  hidden[e.querySelector("caption").textContent] = e.scrollWidth - e.clientWidth;
}
document.body.setAttribute("data-hidden", JSON.stringify(hidden));
document.body.setAttribute("data-viewport", String(width));
document.body.setAttribute("data-page-width", String(document.documentElement.scrollWidth));
document.body.setAttribute("data-clipped", clipped.join(" "));
</script>"""


def browser() -> str | None:
    """A headless Chromium on this machine (Debian's ``chromium-headless-shell`` or
    ``chromium``), or None."""
    import shutil

    return next((p for p in map(shutil.which, ("chromium-headless-shell", "chromium")) if p), None)


def measure_in_browser(page: Path, width: int = 1280) -> dict:
    """Lay ``page`` out in a headless Chromium ``width`` pixels wide and return what
    :data:`_MEASURE` found: ``viewport``, ``page-width``, ``clipped`` (elements past the
    right edge outside any horizontal scroll container) and ``hidden`` (per table caption, the
    pixels of the table its scroll container hides on the right until scrolled). The page
    forbids scripts; a copy without that header, with the measuring script appended, is what
    the browser opens."""
    import subprocess

    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text())
    copy = page.with_name(".measured.html")
    copy.write_text(html.replace("</body>", _MEASURE + "</body>"))
    try:
        dom = subprocess.run(
            [browser(), "--no-sandbox", "--disable-gpu", f"--window-size={width},900",
             "--dump-dom", copy.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
    finally:
        copy.unlink()
    body = parse_strict_text(dom).find("body")
    measured = {k: body.get(f"data-{k}", "") for k in ("viewport", "page-width", "clipped")}
    return measured | {"hidden": json.loads(body.get("data-hidden", "{}"))}


def parse_strict_text(html: str):
    return html5lib.HTMLParser(namespaceHTMLElements=False).parse(html)


def oracle_report(sample_history, sample_data):
    """The generator's exact probabilities as the 'model', the rules next to them, on its
    monthly as-of dates: a score history whose flags persist from one night to the next; and
    the report's comparison built on it."""
    from leadml import rule_scores
    from leadml.reports import build_report

    truth = sample_history.truth
    rules = rule_scores(sample_data, truth[["lead_id", "as_of"]], explain=False)
    history = truth.merge(rules[["lead_id", "as_of", "rule_mql", "rule_score"]],
                          on=["lead_id", "as_of"])  # fmt: skip
    history["model_mql"] = history["p_true"] >= 0.15
    history = history.rename(columns={"p_true": "mql_probability"})
    return history, build_report(sample_data, history).comparison
