"""The documentation stays true to the tree: every relative link and anchor resolves, the
configuration table names exactly the environment variables the code reads, and README.md
stays short (issue 15: what, guarantees, two commands, shared settings, a map of docs/)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.support.paths import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
CHART_README = ROOT / "helm" / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
README_MAX_LINES = 200

# Where the code that reads environment variables lives, and the shell entry points. In the
# packages any mapping named like an environment is one (settings are built `from_env(env)`);
# in tests such mappings are made up for the test, so only the process's own counts there.
PYTHON_TREES = ("votecontract", "ingest", "processor", "loadtest", "scripts")
TEST_TREE = "tests"
SHELL_FILES = (*sorted((ROOT / "scripts").glob("*.sh")), ROOT / ".ci" / "run")
# The operating system's own variables, passed through but not configuration of ours.
SYSTEM_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "XDG_CACHE_HOME",
        "LANG",
        "LC_ALL",
        "TZ",
        "TMPDIR",
        "PYTHONPATH",
        "VIRTUAL_ENV",
    }
)
# Variables a library reads on our behalf: name -> the module whose source must read it.
LIBRARY_VARIABLES = {"FORWARDED_ALLOW_IPS": Path(uvicorn.__file__).parent / "config.py"}

ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
SHELL_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]*):?[-=?+]")
MAKE_DEFAULT = re.compile(r"^([A-Z][A-Z0-9_]*)\s*\?=", re.MULTILINE)
HELM_VALUE_VARIABLE = re.compile(r"#.*?\[([A-Z][A-Z0-9_]*)\]")

MARKDOWN = MarkdownIt("commonmark").enable("table")


def markdown_files() -> list[Path]:
    return [README, *DOCS, CHART_README]


def tokens(path: Path) -> list[Token]:
    return MARKDOWN.parse(path.read_text())


def inline_text(inline: Token) -> str:
    """The text a heading shows: code spans without their backticks, emphasis without marks."""
    return "".join(child.content for child in inline.children or [])


def github_slug(text: str, seen: dict[str, int]) -> str:
    """GitHub's heading anchor: lowercase, punctuation dropped, spaces to hyphens, and -1, -2...
    for repeats."""
    slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


def anchors(path: Path) -> set[str]:
    stream = tokens(path)
    seen: dict[str, int] = {}
    return {
        github_slug(inline_text(stream[i + 1]), seen)
        for i, token in enumerate(stream)
        if token.type == "heading_open"
    }


def links(path: Path) -> Iterator[str]:
    for token in tokens(path):
        for child in token.children or []:
            if child.type == "link_open":
                yield str(child.attrs["href"])
            elif child.type == "image":
                yield str(child.attrs["src"])


def relative_links() -> list[tuple[Path, str]]:
    return [
        (path, href)
        for path in markdown_files()
        for href in links(path)
        if not re.match(r"[a-z][a-z0-9+.-]*:", href)  # http:, https:, mailto:
    ]


@pytest.mark.parametrize(
    ("source", "href"),
    relative_links(),
    ids=lambda value: value.relative_to(ROOT).as_posix() if isinstance(value, Path) else value,
)
def test_a_relative_link_resolves(source: Path, href: str) -> None:
    target, _, anchor = href.partition("#")
    path = (source.parent / target).resolve() if target else source
    assert path.exists(), f"{source.relative_to(ROOT)}: {href}: no such file"
    if anchor:
        assert path.suffix == ".md", f"{href}: an anchor into a file that is not Markdown"
        assert anchor in anchors(path), f"{source.relative_to(ROOT)}: {href}: no such heading"


def test_the_link_check_sees_the_pages_and_their_links() -> None:
    assert {path.name for path in DOCS} >= {
        "architecture.md", "configuration.md", "ingest.md", "processor.md", "local-keda.md",
        "deploying.md", "security.md", "operations.md", "benchmarks.md", "development.md",
    }  # fmt: skip
    assert len(relative_links()) > 50


def test_github_slugs() -> None:
    seen: dict[str, int] = {}
    heading = "The pipeline on one machine (make dev, python -m processor.scaledjob)"
    assert github_slug(heading, seen) == (
        "the-pipeline-on-one-machine-make-dev-python--m-processorscaledjob"
    )
    assert github_slug("Redis: one ACL user per role", seen) == "redis-one-acl-user-per-role"
    assert github_slug("Settings", seen) == "settings"
    assert github_slug("Settings", seen) == "settings-1"


def test_every_docs_page_is_on_the_readme_map() -> None:
    linked = {(README.parent / href.partition("#")[0]).resolve() for href in links(README)}
    assert [page.name for page in DOCS if page.resolve() not in linked] == []


def test_the_readme_stays_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


# --- the configuration table ---------------------------------------------------------------


def is_environment(node: ast.expr, *, process_only: bool) -> bool:
    """`os.environ`, or (unless `process_only`) a mapping named like one (`env`, `host_env`)."""
    name = ast.unparse(node)
    if process_only:
        return name == "os.environ"
    return name.endswith("environ") or name == "env" or name.endswith("_env")


def literal_name(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if ENV_NAME.fullmatch(node.value) else None
    return None


def names_read(tree: ast.AST, *, process_only: bool = False) -> Iterator[str]:
    """ENV_* constants, and the literal names read from an environment mapping."""

    def environment(node: ast.expr) -> bool:
        return is_environment(node, process_only=process_only)

    for node in ast.walk(tree):
        found: str | None = None
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id.startswith("ENV_") for t in targets):
                found = literal_name(node.value)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault"):
                found = literal_name(node.args[0]) if environment(func.value) else None
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                found = literal_name(node.args[0])
            elif isinstance(func, ast.Name) and func.id.startswith("env_") and not process_only:
                found = literal_name(node.args[1]) if len(node.args) > 1 else None
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            found = literal_name(node.slice) if environment(node.value) else None
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In):
            found = literal_name(node.left) if environment(node.comparators[0]) else None
        if found is not None:
            yield found


def variables_in_code() -> set[str]:
    found: set[str] = set()
    for tree in (*PYTHON_TREES, TEST_TREE):
        for source in (ROOT / tree).rglob("*.py"):
            parsed = ast.parse(source.read_text(), str(source))
            found.update(names_read(parsed, process_only=tree == TEST_TREE))
    for script in SHELL_FILES:
        found.update(SHELL_READ.findall(script.read_text()))
    found.update(MAKE_DEFAULT.findall((ROOT / "Makefile").read_text()))
    return found - SYSTEM_VARIABLES


def configuration_table() -> list[str]:
    """The first cell of each row of configuration.md's table headed `variable`."""
    stream = tokens(CONFIGURATION)
    rows: list[list[str]] = []
    for i, token in enumerate(stream):
        if token.type in ("th_open", "td_open"):
            if stream[i - 1].type == "tr_open":
                rows.append([])
            rows[-1].append(stream[i + 1].content)
    tables = [i for i, row in enumerate(rows) if row[0] == "variable"]
    assert len(tables) == 1, "configuration.md holds one table headed `variable`"
    names: list[str] = []
    for row in rows[tables[0] + 1 :]:
        if row[0] == "variable":
            break
        names.append(row[0].strip("`"))
    return names


def test_the_scan_finds_what_each_kind_of_read_looks_like() -> None:
    source = """
ENV_A = "A_NAME"
x = os.environ.get("B_NAME", "")
y = os.environ["C_NAME"]
z = env.get("D_NAME")
w = env_str(env, "E_NAME", "default")
if "F_NAME" in os.environ: pass
other = {"G_NAME": 1}.get("G_NAME")
os.environ["H_NAME"] = "written, not read"
"""
    found = set(names_read(ast.parse(source)))
    assert found == {"A_NAME", "B_NAME", "C_NAME", "D_NAME", "E_NAME", "F_NAME"}
    in_tests = set(names_read(ast.parse(source), process_only=True))
    assert in_tests == {"A_NAME", "B_NAME", "C_NAME", "F_NAME"}
    script = 'args=(--users "${USERS:-50}")\nroot="${CACHE:-$HOME/.cache}"\necho "$PLAIN"'
    assert SHELL_READ.findall(script) == ["USERS", "CACHE"]


def test_the_scan_sees_every_kind_of_variable() -> None:
    found = variables_in_code()
    # An ENV_ constant, a literal os.environ read, a test setting, a shell and a make default.
    assert {"REDIS_URL", "BENCH_REDIS_URL", "TEST_REDIS_URL", "INGEST_URL", "USERS"} <= found


def test_the_configuration_table_names_every_variable_the_code_reads() -> None:
    table = configuration_table()
    assert len(table) == len(set(table)), "a variable is listed twice"
    missing = variables_in_code() - set(table)
    assert not missing, f"add to docs/configuration.md: {sorted(missing)}"


def test_the_configuration_table_names_no_variable_that_does_not_exist() -> None:
    known = variables_in_code() | set(LIBRARY_VARIABLES)
    extra = set(configuration_table()) - known
    assert not extra, f"read by nothing in the tree: {sorted(extra)}"
    for name, module in LIBRARY_VARIABLES.items():
        assert f'"{name}"' in module.read_text(), f"{module} no longer reads {name}"


def test_the_chart_values_set_variables_of_the_table() -> None:
    named = set(HELM_VALUE_VARIABLE.findall((ROOT / "helm" / "values.yaml").read_text()))
    assert named, "values.yaml names the variable each value sets in brackets"
    assert named <= set(configuration_table()), named - set(configuration_table())
