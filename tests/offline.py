"""What a built web page makes a browser fetch from other origins: the docs sites' offline check.

Used by the template's own docs test and by the slow tier on a generated project's site.
"""

import re
from html.parser import HTMLParser

# A URL another origin serves: `https://...`, `http://...` or protocol-relative `//...`.
EXTERNAL_URL = re.compile(r"^\s*(?:https?:)?//", flags=re.IGNORECASE)
# `url(...)` and `@import "..."` in CSS, quoted or not.
CSS_URL = re.compile(
    r"""url\(\s*['"]?\s*([^'")\s]+)|@import\s+['"]([^'"]+)['"]""", flags=re.IGNORECASE
)


def external_css_urls(css: str) -> list[str]:
    """The URLs of other origins that a piece of CSS loads."""
    urls = [url or imported for url, imported in CSS_URL.findall(css)]
    return [url for url in urls if EXTERNAL_URL.match(url)]


class ExternalLoads(HTMLParser):
    """Collects every resource of another origin that a page makes the browser load when shown.

    Links a reader clicks (`<a href>`) load nothing by themselves and are not collected.
    """

    # (tag, attribute) pairs whose URL the browser fetches to show the page.
    LOADED = frozenset(
        {
            ("script", "src"),
            ("img", "src"),
            ("img", "srcset"),
            ("source", "src"),
            ("source", "srcset"),
            ("iframe", "src"),
            ("video", "src"),
            ("video", "poster"),
            ("audio", "src"),
            ("track", "src"),
            ("embed", "src"),
            ("object", "data"),
            ("input", "src"),
        }
    )
    # `<link rel>` values that describe the page and fetch nothing; every other rel loads its
    # href (stylesheet, icon, preload, modulepreload, prefetch, preconnect, manifest...).
    DESCRIPTIVE_RELS = frozenset(
        {"alternate", "author", "canonical", "help", "license", "me", "next", "prev", "search"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if (tag, name) in self.LOADED:
                # A srcset lists "url width, url width": each first word is a URL.
                urls = [part.split()[0] for part in value.split(",") if part.split()]
                self.found += [f"<{tag} {name}={url}>" for url in urls if EXTERNAL_URL.match(url)]
        rel, href = values.get("rel", ""), values.get("href", "")
        descriptive = set(rel.lower().split()) <= self.DESCRIPTIVE_RELS and bool(rel.strip())
        if tag == "link" and EXTERNAL_URL.match(href) and not descriptive:
            self.found.append(f"<link rel={rel} href={href}>")
        inline_css = external_css_urls(values.get("style", ""))
        self.found += [f"style attribute url({url})" for url in inline_css]
        if tag == "style":
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found += [f"<style> url({url})" for url in external_css_urls(data)]


def external_loads(html: str) -> list[str]:
    """What an HTML page loads from other origins when a browser shows it."""
    parser = ExternalLoads()
    parser.feed(html)
    parser.close()
    return parser.found
