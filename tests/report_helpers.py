"""A real check of a static HTML report, in place of a headless browser.

The page is parsed with html5lib in strict mode -- the WHATWG parsing algorithm browsers use,
failing on any parse error instead of recovering from it -- and then: a title; no script, frame,
plugin, event-handler attribute or ``javascript:`` URL (nothing that could raise a script error);
no external resource; every link and image resolves; every image decodes as a PNG of the size
the page gives it and has real content (not blank, not one flat colour).
"""

from __future__ import annotations

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


def check_png(path: Path, width: int, height: int) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG", f"{path.name}: not a PNG but {image.format}"
        image.verify()  # the whole file: chunks and checksums
    with Image.open(path) as image:
        image.load()  # and it decodes
        assert image.size == (width, height), f"{path.name}: {image.size} != {(width, height)}"
        grey = np.asarray(image.convert("L"), dtype=float)
        colours = len(image.convert("RGB").getcolors(maxcolors=1 << 20) or [])
    inked = float((grey < 245).mean())
    assert inked > 0.02, f"{path.name}: almost blank ({inked:.1%} of the pixels are not white)"
    assert grey.std() > 10, f"{path.name}: one flat colour"
    assert colours > 20, f"{path.name}: only {colours} colours: no real figure"


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
            (images if element.tag == "img" else links).append(target)
        if element.tag == "img":
            assert element.get("alt"), f"image {element.get('src')!r} has no alt text"
            check_png(page.parent / element.get("src"), int(element.get("width")),
                      int(element.get("height")))  # fmt: skip
    assert images, "the page shows no figure"
    return {"tree": tree, "images": images, "links": links}
