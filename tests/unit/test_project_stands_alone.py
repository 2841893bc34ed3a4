"""The project stands on its own (docs/architecture.md).

- No tracked file cites the design page that lives outside the repository: the design the code
  relies on is ``docs/architecture.md``.
- Every relative link in ``README.md`` and ``docs/*.md`` points to a file that exists.
- ``capplan_core`` (the domain) never imports Prefect.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
# built from pieces so that this file does not match itself
FORBIDDEN = ("DESIGN" + ".md", "../" + "shared")
# [text](target) and [text]: target; images too. Code spans are removed first.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
CODE_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def relative_links(markdown: str) -> list[str]:
    text = CODE_SPAN.sub("", CODE_FENCE.sub("", markdown))
    links = INLINE_LINK.findall(text) + REF_LINK.findall(text)
    return [
        link
        for link in links
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", link) and not link.startswith("#")
    ]


def test_no_tracked_file_cites_an_outside_design_page() -> None:
    files = tracked_files()
    assert len(files) > 50, "git ls-files found too few files; is this a checkout?"
    offenders = []
    for path in files:
        if not path.is_file():
            continue  # deleted in the working tree but still tracked
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary data (Parquet, images, gzip)
        for lineno, line in enumerate(text.splitlines(), 1):
            if any(word in line for word in FORBIDDEN):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert offenders == [], "cite docs/architecture.md instead:\n" + "\n".join(offenders)


def test_relative_links_in_docs_point_to_existing_files() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert ROOT / "docs" / "architecture.md" in pages
    broken = []
    checked = 0
    for page in pages:
        for link in relative_links(page.read_text(encoding="utf-8")):
            target = unquote(link.split("#", 1)[0].split("?", 1)[0])
            checked += 1
            if not (page.parent / target).resolve().exists():
                broken.append(f"{page.relative_to(ROOT)}: {link}")
    assert checked >= 10, f"only {checked} relative links found; is the link pattern broken?"
    assert broken == [], "links to missing files:\n" + "\n".join(broken)


def test_link_pattern_finds_and_skips_what_it_should() -> None:
    md = (
        'see [a](docs/a.md#x) and ![img](pic.png "t") and [ext](https://x.org/y.md)\n'
        "[anchor](#here) `[code](nope.md)`\n[ref]: other.md\n```\n[fenced](no.md)\n```\n"
    )
    assert sorted(relative_links(md)) == ["docs/a.md#x", "other.md", "pic.png"]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_domain_package_never_imports_prefect() -> None:
    modules = sorted((ROOT / "capplan_core").rglob("*.py"))
    assert len(modules) > 20
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in modules
        for name in sorted(_imported_modules(path))
        if name == "prefect" or name.startswith(("prefect.", "prefect_"))
    ]
    assert offenders == [], "capplan_core must not import Prefect:\n" + "\n".join(offenders)


#: the clients of the outside world: they live in capplan_adapters, never in the domain
OUTSIDE_WORLD = (
    "sqlalchemy",
    "alembic",
    "kubernetes",
    "redis",
    "httpx",
    "xmlrpc",
    "psycopg",
    "rq",
    "celery",
    "kombu",
    "supervisor",
    "requests",
    "urllib3",
    "capplan_adapters",
    "capplan_app",
    "capplan_cli",
    "tasks",
    "flows",
)


def test_the_domain_imports_no_client_of_the_outside_world() -> None:
    modules = sorted((ROOT / "capplan_core").rglob("*.py"))
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in modules
        for name in sorted(_imported_modules(path))
        if name.split(".")[0] in OUTSIDE_WORLD
    ]
    assert offenders == [], (
        "capplan_core is the domain: adapters (store, scalers, metric "
        "sources) live in capplan_adapters:\n" + "\n".join(offenders)
    )


def test_the_rule_sees_a_lazy_client_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from redis import Redis\n    import sqlalchemy.orm\n")
    assert {"redis", "sqlalchemy.orm"} <= _imported_modules(module)
