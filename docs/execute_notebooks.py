#!/usr/bin/env python
"""Execute notebooks in place so they are committed with their outputs: each notebook runs top to bottom in a fresh
IPython shell (execnb's, as `nbdev-test` runs them) from its own folder, stops at the first error (the file is then left
as it was), has its machine paths and memory addresses scrubbed (`docs/scrub_outputs.py`) and is cleaned with
`nbdev-clean`, which keeps outputs.

    python docs/execute_notebooks.py nbs/41_tutorial.classification.ipynb   # one or several notebooks
    python docs/execute_notebooks.py --all                                  # every notebook in nbs/"""
import argparse, os, re, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from scrub_outputs import scrub_nb

def _html(o) -> str:
    h = o.get('data', {}).get('text/html', '')
    return ''.join(h) if isinstance(h, list) else h

def _is_progress(o) -> bool:
    h = _html(o)
    return o.get('output_type') == 'display_data' and ('<progress' in h or 'class="fastprogress"' in h or
                                                       (h.lstrip().startswith('<style>') and 'progress' in h))

def final_progress(cell):
    """fastprogress updates its display in place; this shell keeps every update, so keep what Jupyter would show at
    the end: the last state of each progress display, without its bars (the training table, if any)."""
    outs, res = cell.get('outputs', []), []
    for o in outs:
        if _is_progress(o) and res and _is_progress(res[-1]): res[-1] = o
        else: res.append(o)
    kept = []
    for o in res:
        if _is_progress(o):
            h = re.sub(r'<div><progress[^>]*></progress>[^<]*</div>', '', _html(o))
            if '<table' not in h: continue
            o = {'output_type': 'display_data', 'metadata': {}, 'data': {'text/html': h, 'text/plain': '<the training table>'}}
        kept.append(o)
    cell['outputs'] = kept

def _tail(cell, n=1500) -> str:
    "The end of a cell's printed output and error, to say why a notebook failed"
    text = ''.join(''.join(o.get('text', '')) + '\n'.join(o.get('traceback', [])) for o in cell.get('outputs', []))
    return re.sub(r'\x1b\[[0-9;]*m', '', text)[-n:]

def execute(path:Path, timeout:int|None=None, console:bool=False) -> float:
    "Run `path` in place with its outputs (`console`: as in a terminal, for notebooks that test terminal output); the seconds it took"
    from execnb.shell import CaptureShell
    from fastcore.nbio import read_nb, write_nb, nb2dict, dict2nb
    from nbdev.clean import clean_nb
    from nbdev.test import _skip_cell
    from nbdev.config import get_config
    import fastcore.imports
    fastcore.imports.IN_NOTEBOOK = not console   # before fastai loads: HTML tables and progress, as Jupyter shows them
    path = Path(path).absolute()
    nb = read_nb(path)
    cwd, start = os.getcwd(), time.perf_counter()
    os.chdir(path.parent)   # relative paths in a notebook mean its own folder, as under nbdev-test
    try:
        shell = CaptureShell(path=path.parent, mpl_format='png', timeout=timeout)
        # the cells nbdev-test runs: `#| eval: false` cells and flagged ones (`tst_flags`) are skipped as there
        try: shell.run_all(nb, exc_stop=True, preproc=_skip_cell(nb, get_config().tst_flags.split()))
        except Exception:
            failed = next((c for c in nb.cells if c.get('outputs') and any(o.get('output_type') == 'error' for o in c.outputs)), None)
            if failed is not None: print(f'failed in:\n{failed.source}\nits output ends:\n{_tail(failed)}', flush=True)
            raise
    finally: os.chdir(cwd)
    took = time.perf_counter() - start
    d = nb2dict(nb)
    for cell in d['cells']: final_progress(cell)
    nb = dict2nb(scrub_nb(d))
    clean_nb(nb)   # what nbdev-clean does: no execution counts or run metadata; outputs stay
    write_nb(nb, path)
    return took

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='*', help='notebooks to execute in place')
    p.add_argument('--all', action='store_true', help='every notebook in nbs/ (not those starting with _)')
    p.add_argument('--timeout', type=int, default=None, help='seconds one cell may take')
    p.add_argument('--console', action='store_true', help='run as in a terminal (plain-text progress and tables), as nbdev-test does: for notebooks that test terminal output, such as 90_train')
    a = p.parse_args(argv)
    nbs = [Path(n) for n in a.notebooks]
    if a.all: nbs += sorted(f for f in Path('nbs').rglob('*.ipynb') if not f.name.startswith('_') and '.ipynb_checkpoints' not in f.parts)
    if not nbs: p.error('name the notebooks, or pass --all')
    failed = 0
    for nb in nbs:
        try: print(f'{nb}: {execute(nb, a.timeout, a.console):.0f} s', flush=True)
        except Exception as e: failed += 1; print(f'FAILED: {nb}: {type(e).__name__}: {str(e)[:2000]}', flush=True)
    print(f'{len(nbs) - failed} passed, {failed} failed')
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())
