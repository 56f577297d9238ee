"""The shape of the package: layers that import only downwards, private names kept inside their
part, modules small enough to read (the exceptions are named in the README with the reason)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "leadml"
MAX_LINES = 500


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in ``path``, type-only and function-level ones included."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.append((module, [alias.name for alias in node.names]))
    return found


def _part(module: str) -> str | None:
    """The top-level part of leadml a module belongs to (``leadml.scoring._core`` -> scoring)."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and bits[0] == "leadml" else None


def _modules():
    return sorted(p for p in SRC.rglob("*.py"))


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in _modules():
        me = _part(".".join(path.relative_to(SRC.parent).with_suffix("").parts))
        if me in (None, "__init__", "__main__"):
            continue
        for module, _ in _imports(path):
            other = _part(module)
            if other and other != me:
                edges.setdefault(me, set()).add(other)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]  # on the current path: a cycle
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_no_import_cycle_between_the_parts_of_the_package():
    edges = _graph()
    assert edges, "no imports found: the walk is broken"
    assert _cycle(edges) is None, f"import cycle between parts of leadml: {_cycle(edges)}"


def test_the_layers_import_only_downwards():
    # The flow of the README's module map; a part may import any part listed before it.
    order = ["errors", "common", "config", "data", "synth", "features", "rules", "modeling",
             "tracking", "scoring", "flat", "spark", "reports", "jobs", "cli"]  # fmt: skip
    rank = {part: i for i, part in enumerate(order)}
    upward = [
        f"{me} imports {other}"
        for me, others in _graph().items()
        for other in others
        if rank.get(other, -1) > rank.get(me, len(order))
    ]
    unknown = set(_graph()) - set(rank)
    assert not unknown, f"parts missing from the layer order: {sorted(unknown)}"
    assert not upward, "imports that climb a layer: " + "; ".join(sorted(upward))


def test_no_private_name_is_reached_from_another_part():
    offences = []
    for path in _modules():
        rel = path.relative_to(SRC.parent)
        me = _part(".".join(rel.with_suffix("").parts))
        for module, names in _imports(path):
            if _part(module) in (None, me):
                continue
            private_module = any(bit.startswith("_") for bit in module.split(".")[1:])
            private_names = [n for n in names if n.startswith("_") and n != "__version__"]
            if private_module or private_names:
                offences.append(f"{rel}: {module} {private_names or ''}".rstrip())
    assert not offences, "private names used outside their part:\n" + "\n".join(offences)


def _exceptions() -> dict[str, str]:
    """Modules the README allows past the size limit: ``path`` (lines): why, in its module map."""
    readme = (ROOT / "README.md").read_text()
    return dict(re.findall(r"`(src/leadml/[\w/]+\.py)` is longer than \d+ lines: ([^\n]+)", readme))


def test_modules_are_small_enough_to_read():
    allowed = _exceptions()
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    unexplained = {path: n for path, n in long.items() if path not in allowed}
    assert not unexplained, (
        f"modules over {MAX_LINES} lines without a reason in the README: {unexplained}"
    )
    stale = set(allowed) - set(long)
    assert not stale, f"the README excuses modules that are short now: {sorted(stale)}"


def test_the_public_face_and_its_type_hints_name_the_same_things():
    import leadml

    tree = ast.parse((SRC / "__init__.py").read_text())
    hinted = {
        alias.asname or alias.name: node.module
        for block in tree.body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in block.body
        for alias in node.names
    }
    served = {name: module.removesuffix(f".{name}") for name, module in leadml._API.items()}
    assert hinted == served
    for name in leadml.__all__:
        assert getattr(leadml, name) is not None
