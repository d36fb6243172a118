"""How the report is built: jinja2 templates shipped with the package, autoescaping that does not depend on
the section code, no markup written in Python, and no import cycle inside ``graftwork.report``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from markupsafe import Markup

import graftwork.report
from graftwork.report.templating import environment, render, shown

PACKAGE = Path(graftwork.report.__file__).parent


def test_values_are_escaped_by_the_environment_not_by_the_caller():
    env = environment()
    assert env.autoescape is True
    page = env.from_string('<td title="{{ v }}">{{ v }}</td>{{ m }}').render(
        v="<b>&\"x\" 'y' \x1b[2J", m=Markup("<i>ours</i>"))
    escaped = "&lt;b&gt;&amp;&quot;x&quot; &#x27;y&#x27; \\x1b[2J"
    assert page == f'<td title="{escaped}">{escaped}</td><i>ours</i>'
    assert shown(1234567) == "1,234,567" and shown(None) == "—" and shown(0.12345) == "0.123"


def test_templates_are_package_files_that_all_compile():
    env = environment()
    names = env.list_templates()
    on_disk = {str(p.relative_to(PACKAGE / "templates")) for p in (PACKAGE / "templates").rglob("*")
               if p.is_file()}
    assert set(names) == on_disk and "report.html.j2" in names and "sections/entities.html.j2" in names
    for name in names:
        if name.endswith(".j2"):
            env.get_template(name)  # a syntax error in any template fails here, not in a user's report
    used = {m for p in PACKAGE.glob("*.py") for m in re.findall(r'"(sections/[\w.]+\.j2)"', p.read_text())}
    assert used and used <= set(names)


def test_a_section_template_renders_a_hostile_value_as_text():
    text = render("sections/plan.html.j2", strategy="<script>x</script>", auto=False, reasons=["a<b"],
                  facts={"<k>": "v"}, mentions=[])
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text and "<b>&lt;k&gt;</b>" in text


def _strings(tree: ast.AST) -> list[str]:
    """The string constants of a module that are not docstrings."""
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_no_python_module_of_the_report_writes_markup():
    tag = re.compile(r"</?[a-z][a-z0-9]*[\s>/]")
    for path in PACKAGE.glob("*.py"):
        found = [s for s in _strings(ast.parse(path.read_text(encoding="utf-8"))) if tag.search(s)]
        assert not found, f"{path.name} writes markup: {found}"


def test_no_import_cycle_inside_the_report_package():
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
        graph[path.stem] = {d for d in deps if (PACKAGE / f"{d}.py").is_file()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(d == goal or (d not in seen and reaches(d, goal, seen | {d})) for d in graph[start])

    assert not [m for m in graph if reaches(m, m, set())]
    assert graph["plots"] == {"values"}
