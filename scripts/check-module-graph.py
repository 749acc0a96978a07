#!/usr/bin/env python3
"""Checks the module graph of controller/src (docs/architecture.md).

Every file is a module; a file depends on the modules it names through
`crate::...` or `super::...` outside comments and outside its
`#[cfg(test)]` part (test modules are not checked). The floors, top down:
the daemon (wiring), the protocol loop (`runtime`), the components, the
bottom. Fails (exit 1) when

- the graph has a cycle (each cycle is printed), or
- a module other than the daemon names `crate::runtime`, or
- a module names one on a floor above its own (the bottom floor may name
  the leaf report types of components listed in BOTTOM_MAY_NAME).

Usage: scripts/check-module-graph.py [controller/src]
"""

import re
import sys
from pathlib import Path

# Modules that import nothing of the controller but each other (and the
# leaf report types of their components: hook outcomes, the MongoDB view,
# config mismatches).
BOTTOM = {
    "actuation_mode", "clock", "command_channel", "counts", "describe", "lease_margin", "maintenance_notes", "member_name", "reports",
    "snapshot",
    "status_doc",
}
BOTTOM_MAY_NAME = BOTTOM | {"hooks", "shell", "mongo::view", "mongo", "agreement", "test_node"}
RUNTIME_USERS = {"daemon"}
# The daemon's floor: what wires the node up and changes it while it runs.
DAEMON = {"daemon", "build", "reload"}
LOOP = {"runtime"}


def floor(module: str) -> int:
    top = module.split("::")[0]
    if top in DAEMON:
        return 3
    if top in LOOP:
        return 2
    if module in BOTTOM:
        return 0
    return 1


FLOOR_NAMES = ["bottom", "component", "protocol loop", "daemon"]


def is_test(module: str) -> bool:
    return module == "test_node" or module.split("::")[-1] == "tests"



def module_of(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return "::".join(parts)


def code_of(text: str) -> str:
    """The text without comments and without the trailing test module."""
    test = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod tests", text, re.M)
    if test:
        text = text[: test.start()]
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def names(module: str, code: str) -> set[str]:
    found = set()
    for group in re.finditer(r"crate::\{([^}]*)\}", code):
        for item in group.group(1).split(","):
            item = item.strip().split(" ")[0]
            if item:
                found.add(item.replace("self", "").strip(":"))
    for path in re.finditer(r"crate::([a-z_]+(?:::[a-z_]+)*)", code):
        found.add(path.group(1))
    parent = module.rsplit("::", 1)[0] if "::" in module else ""
    for path in re.finditer(r"super::([a-z_]+(?:::[a-z_]+)*)", code):
        found.add(f"{parent}::{path.group(1)}" if parent else path.group(1))
    for group in re.finditer(r"super::\{([^}]*)\}", code):
        for item in group.group(1).split(","):
            item = item.strip().split(" ")[0]
            if item and item[0].islower():
                found.add(f"{parent}::{item}" if parent else item)
            elif item and parent:
                found.add(parent)
    return {n for n in found if n}


def resolve(name: str, modules: set[str]) -> str | None:
    parts = name.split("::")
    while parts:
        candidate = "::".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "controller/src")
    files = {module_of(root, p): p for p in root.rglob("*.rs") if "bin" not in p.relative_to(root).parts}
    modules = set(files)
    graph = {}
    for module, path in files.items():
        named = {resolve(n, modules) for n in names(module, code_of(path.read_text()))}
        # A parent naming its own child module (`pub use child::X`) is not
        # a dependency edge of interest; a child naming its parent is.
        graph[module] = {n for n in named if n and n != module and not n.startswith(module + "::")}
    problems = []
    for cycle in cycles(graph):
        problems.append("cycle: " + " -> ".join(cycle))
    for module, deps in sorted(graph.items()):
        if is_test(module):
            continue
        if "runtime" in deps and module not in RUNTIME_USERS:
            problems.append(f"{module} names crate::runtime (only the daemon may)")
        for dep in sorted(deps):
            if floor(dep) <= floor(module) or (module in BOTTOM and dep in BOTTOM_MAY_NAME):
                continue
            problems.append(
                f"{FLOOR_NAMES[floor(module)]}-floor module {module} names {dep} "
                f"({FLOOR_NAMES[floor(dep)]} floor)"
            )
    for p in problems:
        print(p)
    if not problems:
        print(f"{len(modules)} modules, no cycle, runtime named only by the daemon, no module names a floor above it")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
