"""The package's import graph: every ``sclle_basicsr`` import of every module (also those inside functions), folded
to folders, drawn as a Mermaid graph in docs/structure.md; tests/test_structure.py checks it has no circle.

    python scripts/draw_structure.py            # rewrite docs/structure.md's drawing
    python scripts/draw_structure.py --check    # exit 1 if the drawing is not the current one
"""
import argparse
import ast
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = 'sclle_basicsr'
DOC = osp.join(ROOT, 'docs', 'structure.md')
BEGIN, END = '```mermaid\n', '```\n'


def module_files(root=ROOT):
    """``{module name: path}`` of every module of the package (``files/`` holds data, not code)."""
    found = {}
    for folder, dirs, files in os.walk(osp.join(root, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d not in ('files', '__pycache__'))
        for name in sorted(files):
            if name.endswith('.py'):
                rel = osp.relpath(osp.join(folder, name), root)[:-3].replace(os.sep, '.')
                found[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = osp.join(folder, name)
    return found


def imports(path, module, modules):
    """The package's modules that ``module`` (file ``path``) imports, anywhere in the file."""
    is_package = path.endswith('__init__.py')
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read(), path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = module.split('.')[:len(module.split('.')) - node.level + is_package]
                base = '.'.join(parts + ([base] if base else []))
            names = [f'{base}.{alias.name}' for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition('.')[0]
            if name and name != module and name.startswith(PACKAGE):
                found.add(name)
    return found


def import_graph(root=ROOT):
    modules = module_files(root)
    return {m: imports(p, m, modules) for m, p in modules.items()}


def folder_of(module):
    """``sclle_basicsr.inference.backends`` -> ``inference``; a top-level module stays itself (``export``)."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else PACKAGE


def folder_graph(graph):
    """Edges between folders, the package's ``__init__`` (which registers everything) left out."""
    edges = set()
    for module, targets in graph.items():
        if module == PACKAGE:
            continue
        for target in targets:
            a, b = folder_of(module), folder_of(target)
            if a != b and PACKAGE not in (a, b):
                edges.add((a, b))
    return sorted(edges)


def cycles(edges):
    """Each circle of the directed graph ``edges`` once, as a list of nodes (empty: none)."""
    nodes = sorted({n for e in edges for n in e})
    succ = {n: sorted(b for a, b in edges if a == n) for n in nodes}
    found, seen = [], set()

    def walk(path):
        for nxt in succ[path[-1]]:
            if nxt == path[0]:
                key = frozenset(path)
                if key not in seen:
                    seen.add(key)
                    found.append(path + [nxt])
            elif nxt not in path and nxt > path[0]:
                walk(path + [nxt])
    for start in nodes:
        walk([start])
    return found


def drawing(edges):
    return BEGIN + 'graph TD\n' + ''.join(f'    {a} --> {b}\n' for a, b in edges) + END


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--check', action='store_true', help='exit 1 if docs/structure.md is not current')
    args = p.parse_args(argv)
    text = open(DOC, encoding='utf-8').read()
    start = text.index(BEGIN)
    end = text.index(END, start + len(BEGIN)) + len(END)
    new = text[:start] + drawing(folder_graph(import_graph())) + text[end:]
    if args.check:
        if new != text:
            print(f'{DOC}: the drawing is not current; run python scripts/draw_structure.py', file=sys.stderr)
            return 1
        return 0
    tmp = DOC + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(new)
    os.replace(tmp, DOC)
    return 0


if __name__ == '__main__':
    sys.exit(main())
