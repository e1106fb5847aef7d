"""The template's documentation site: it builds strictly, loads nothing from the network when a
page is viewed, and names only Make targets and files that exist."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import TEMPLATE_DIR
from .offline import external_css_urls, external_loads
from .workflows import make_targets

DOCS_DIR = TEMPLATE_DIR / "docs"
MKDOCS_CONFIG = TEMPLATE_DIR / "mkdocs.yml"
# The generated project's template, as its folder is named in this repository.
PROJECT_FOLDER = "{{cookiecutter.project_slug | project_dir_name}}"
PROJECT_DIR = TEMPLATE_DIR / PROJECT_FOLDER
PACKAGE_FOLDER = "{{cookiecutter.package_name}}"


@pytest.mark.parametrize(
    ("html", "flagged"),
    [
        ('<script src="https://cdn.example.com/lib.js"></script>', True),
        ('<script src="//cdn.example.com/lib.js"></script>', True),
        ('<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">', True),
        ('<link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>', True),
        ('<link rel="icon" href="http://example.com/favicon.png">', True),
        ('<img src="https://example.com/logo.png">', True),
        ('<img srcset="logo.png 1x, https://example.com/logo@2x.png 2x">', True),
        ("<div style=\"background: url('https://example.com/bg.png')\"></div>", True),
        ("<style>@import 'https://example.com/theme.css';</style>", True),
        ("<style>body { background: url(//example.com/bg.png) }</style>", True),
        ('<script src="assets/javascripts/bundle.js"></script>', False),
        ('<link rel="stylesheet" href="assets/stylesheets/main.css">', False),
        ('<link rel="canonical" href="https://example.com/page/">', False),
        ('<a href="https://github.com/drivendataorg/cookiecutter-data-science">ccds</a>', False),
        ('<img src="data:image/png;base64,iVBORw0KGgo=">', False),
        ("<p>https://example.com in the text</p>", False),
    ],
)
def test_the_scanner_flags_what_loads_from_another_origin(html: str, *, flagged: bool) -> None:
    assert bool(external_loads(html)) is flagged, external_loads(html)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with `--strict` (any warning fails) into a scratch folder."""
    site_dir = tmp_path_factory.mktemp("site")
    build = ["build", "--strict", "--config-file", str(MKDOCS_CONFIG), "--site-dir", str(site_dir)]
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", *build],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return site_dir


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    config = yaml.safe_load(MKDOCS_CONFIG.read_text(encoding="utf-8"))
    pages = [page for entry in config["nav"] for page in entry.values()]
    assert sorted(pages) == sorted(path.name for path in DOCS_DIR.glob("*.md"))
    for page in pages:
        # use_directory_urls: false, so each page is a file that opens from the file system.
        assert (site / page.replace(".md", ".html")).is_file(), page


def test_no_built_page_loads_anything_from_the_network(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= len(list(DOCS_DIR.glob("*.md")))
    found = {
        str(page.relative_to(site)): loads
        for page in pages
        if (loads := external_loads(page.read_text(encoding="utf-8")))
    }
    found |= {
        str(sheet.relative_to(site)): urls
        for sheet in sorted(site.rglob("*.css"))
        if (urls := external_css_urls(sheet.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_configuration_keeps_the_site_offline() -> None:
    """What the built HTML cannot show: scripts that fetch from the network at view time."""
    config = yaml.safe_load(MKDOCS_CONFIG.read_text(encoding="utf-8"))
    assert config["theme"]["font"] is False  # otherwise Google Fonts
    assert config["use_directory_urls"] is False
    assert "offline" in config["plugins"]
    # Material's script asks the GitHub API for a repository's stars and forks at view time.
    assert "repo_url" not in config
    # The offline plugin adds the iframe-worker shim from unpkg.com unless a copy is named.
    shims = [path for path in config["extra"]["polyfills"] if "iframe-worker" in path]
    assert shims
    assert all((DOCS_DIR / path).is_file() for path in shims)


def test_no_page_draws_a_mermaid_diagram() -> None:
    """Material fetches mermaid.js from a CDN, from its script, when a page has a diagram."""
    for page in DOCS_DIR.glob("*.md"):
        assert "```mermaid" not in page.read_text(encoding="utf-8"), page.name


FENCE = re.compile(r"^(`{3,}|~{3,})[^\n]*\n(.*?)^\1[ \t]*$", flags=re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")


def code_spans(markdown: str) -> tuple[list[str], list[str]]:
    """The inline code spans of a page, and the lines of its fenced code blocks."""
    fenced = [line for block in FENCE.finditer(markdown) for line in block.group(2).splitlines()]
    return INLINE_CODE.findall(FENCE.sub("", markdown)), fenced


def defined_targets(makefile: Path) -> set[str]:
    return set(re.findall(r"^([a-zA-Z][\w-]*):", makefile.read_text("utf-8"), flags=re.MULTILINE))


# A target named in the docs is one of the template's or one of a generated project's.
KNOWN_TARGETS = defined_targets(TEMPLATE_DIR / "Makefile")
KNOWN_TARGETS |= defined_targets(PROJECT_DIR / "Makefile")


def unknown_make_targets(markdown: str, known: set[str] = KNOWN_TARGETS) -> list[str]:
    """The targets of `make ...` commands in a page's code that no Makefile (of `known`) has."""
    inline, fenced = code_spans(markdown)
    named = [target for code in inline + fenced for target in make_targets(code)]
    # `make <step>` names a placeholder, not a target.
    return [t for t in named if t not in known and not t.startswith("<")]


def test_the_make_target_check_can_fail() -> None:
    page = "Run `make no-such-target` first.\n\n```bash\nmake all && make data-push  # note\n```\n"
    assert unknown_make_targets(page) == ["no-such-target"]


@pytest.mark.parametrize("page", sorted(DOCS_DIR.glob("*.md")), ids=lambda path: path.name)
def test_every_make_target_the_docs_name_exists(page: Path) -> None:
    assert unknown_make_targets(page.read_text(encoding="utf-8")) == []


PROJECT_TARGETS = defined_targets(PROJECT_DIR / "Makefile")


@pytest.mark.parametrize(
    "page", sorted((PROJECT_DIR / "docs").rglob("*.md")), ids=lambda path: path.name
)
def test_every_make_target_the_generated_docs_name_is_the_projects(page: Path) -> None:
    """A generated project's docs name only its own targets (none of the template's)."""
    named = unknown_make_targets(page.read_text(encoding="utf-8"), PROJECT_TARGETS)
    assert named == []


# Where a path in the docs may be found: the template, the generated project, and the package and
# dbt folders inside it (a module named by its path in the package, a model by its path in dbt's
# models folder). `<package>` stands for the package folder.
PATH_ROOTS = (
    TEMPLATE_DIR,
    PROJECT_DIR,
    PROJECT_DIR / "src" / PACKAGE_FOLDER,
    PROJECT_DIR / "transform" / "models",
)
FILE_SUFFIXES = (
    *(".cfg", ".csv", ".db", ".dvc", ".duckdb", ".example", ".html", ".ipynb", ".js", ".json"),
    *(".lock", ".md", ".parquet", ".png", ".py", ".sh", ".sql", ".toml", ".txt", ".yaml", ".yml"),
)
# Paths that exist only once something ran, each with what makes it: the docs name them as places.
MADE_AT_RUN_TIME = {
    ".cruft.json": "written by the post-gen hook",
    ".dvc/config*": "written by `make setup` (DVC)",
    ".env": "a copy of .env.example a user makes",
    "../cookiecutter-mlops-demo/*": "written by `make demo`",
    "build/model": "written by `make bundle`",
    "contract/feature_contract.json": "an artifact of each MLflow training run",
    "data/*": "the loop's data: raw tables, warehouse, predictions, the prediction log, labels",
    "dvc.lock": "written by `dvc repro`",
    "marts/features.*": "written by `make adopt`",
    "mlartifacts": "MLflow's artifact folder, made by the first run",
    "mlflow.db": "MLflow's SQLite store, made by the first run",
    "monitoring/reference.json": "an artifact of each MLflow training run",
    "path/to/*": "a placeholder for the template's folder",
    "reports": "the steps' reports, written by the loop",
    "reports/*": "the steps' reports, written by the loop",
    "site": "written by `make docs`",
    "site/*": "written by `make docs`",
    "transform/models/marts/features.*": "written by `make adopt`",
    "transform/target": "dbt's output, written by the data steps",
}
# Code that looks like a path but is an example of something else.
NOT_PATHS = {
    "a/b": "an example of a refused project slug",
    "../x": "an example of a refused project slug",
}
# A code span that names a file or folder: no spaces or punctuation of commands, URLs or
# settings, and either a slash or a file suffix (a suffix alone, `.sql`, is not a path).
PATH_LIKE = re.compile(r"^[\w.~<>{}*/-]+$")


def mentioned_paths(markdown: str) -> list[str]:
    """The file and folder paths a page names in its inline code."""
    inline, _ = code_spans(markdown)
    return [
        code
        for code in inline
        if code == PROJECT_FOLDER
        or (
            PATH_LIKE.match(code)
            and not code.startswith("/")
            and code not in FILE_SUFFIXES
            and ("/" in code or code.endswith(FILE_SUFFIXES))
        )
    ]


def path_exists(path: str) -> bool:
    """Whether `path` (a glob with `<placeholder>` parts) names something in the repository."""
    relative = path.rstrip("/").replace("<package>", PACKAGE_FOLDER)
    relative = re.sub(r"<[^>]+>", "*", relative)
    if any(next(root.glob(relative), None) is not None for root in PATH_ROOTS):
        return True
    # A bare file name (`dagster.yaml`) names that file anywhere in the generated project.
    return "/" not in relative and next(PROJECT_DIR.rglob(relative), None) is not None


def unknown_paths(markdown: str) -> list[str]:
    """The paths a page names that exist neither in the repository nor as a run's output."""
    return [
        path
        for path in mentioned_paths(markdown)
        if path not in NOT_PATHS
        and not any(fnmatch.fnmatch(path.rstrip("/"), made) for made in MADE_AT_RUN_TIME)
        and not path_exists(path)
    ]


def test_the_path_check_can_fail() -> None:
    page = "See `src/<package>/config.py`, `hooks/template_hooks.py`, `src/<package>/nowhere.py`."
    assert unknown_paths(page) == ["src/<package>/nowhere.py"]


# The pages written for this site, but comparison.md (it names other projects' folders).
# architecture.md and benchmarks.md are working notes that also name files of intermediate
# states (build folders, artifacts inside a run).
SITE_PAGES = ["index.md", "questions.md", "design.md", "own-data.md", "scaling.md", "faq.md"]


@pytest.mark.parametrize("name", SITE_PAGES)
def test_every_path_the_docs_name_exists(name: str) -> None:
    assert unknown_paths((DOCS_DIR / name).read_text(encoding="utf-8")) == []
