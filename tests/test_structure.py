"""The house rules of the package, read from its code: no import circle between modules or folders, ``utils/`` at the
bottom, nothing new loose at the top level, docs/structure.md's drawing current, one flag style (snake_case, as
BasicSR's ``--auto_resume``) for every command."""
import ast
import glob
import os.path as osp

from conftest import load_script

from sclle_basicsr.utils.assets import REPO_ROOT

structure = load_script('draw_structure')
TOP_LEVEL = {'__init__', '_compat', '_registration', 'export', 'test', 'train', 'version'}


def test_no_module_imports_another_in_a_circle():
    graph = structure.import_graph()
    edges = [(a, b) for a, targets in graph.items() if a != 'sclle_basicsr' for b in targets if b != 'sclle_basicsr']
    assert len(edges) > 100  # the graph is read, not empty
    assert structure.cycles(edges) == []


def test_no_folder_imports_another_in_a_circle():
    edges = structure.folder_graph(structure.import_graph())
    assert ('inference', 'utils') in edges and ('utils', 'inference') not in edges
    assert structure.cycles(edges) == []


def test_the_cycle_finder_sees_a_circle():
    assert structure.cycles([('a', 'b'), ('b', 'c'), ('c', 'a'), ('c', 'd')]) == [['a', 'b', 'c', 'a']]


def test_utils_import_nothing_above_them():
    graph = structure.import_graph()
    above = {m: sorted(t for t in targets if not t.startswith('sclle_basicsr.utils'))
             for m, targets in graph.items() if m.startswith('sclle_basicsr.utils')}
    assert any(graph[m] for m in above)  # utils modules import each other: the check reads them
    assert {m: t for m, t in above.items() if t} == {}


def test_only_the_entry_points_and_fixes_sit_at_the_top_level():
    loose = {osp.basename(p)[:-3] for p in glob.glob(osp.join(REPO_ROOT, 'sclle_basicsr', '*.py'))}
    assert loose == TOP_LEVEL


def test_the_structure_drawing_is_current():
    assert structure.main(['--check']) == 0


def test_every_command_line_flag_is_snake_case():
    flags = []
    for path in glob.glob(osp.join(REPO_ROOT, 'sclle_basicsr', '**', '*.py'), recursive=True) + \
            glob.glob(osp.join(REPO_ROOT, 'scripts', '*.py')):
        for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
            if isinstance(node, ast.Call) and getattr(node.func, 'attr', None) == 'add_argument':
                flags += [(osp.relpath(path, REPO_ROOT), a.value) for a in node.args
                          if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith('--')]
    assert len(flags) > 50
    assert [f for f in flags if '-' in f[1][2:]] == []
