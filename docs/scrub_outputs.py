#!/usr/bin/env python
"""Remove machine paths and memory addresses from the outputs of notebooks, so committed outputs say nothing about the
machine that ran them. `python docs/scrub_outputs.py nbs/41_*.ipynb` scrubs in place; `--check` changes nothing and
exits non-zero if any output still holds one (CI runs it on every notebook)."""
import argparse, json, re, sys
from pathlib import Path
from fastcore.nbio import nb2str

# site-packages paths keep the part a reader can use (`fastai/learner.py`); any other absolute path under a home,
# scratch or work folder keeps only its last component
_site = re.compile(r"""(?:[A-Za-z]:)?[/\\][^\s'"<>()\[\]]*?[/\\](?:site|dist)-packages[/\\]""")
_home = re.compile(r"""(?:/(?:work|tmp|root|home/[^/\s'"<>]+|Users/[^/\s'"<>]+|var/folders)|[A-Za-z]:\\Users\\[^\\\s'"<>]+)(?:[/\\][^\s'"<>()\[\],:;]+)*""")
_addr = re.compile(r'\bat 0x[0-9a-fA-F]{6,}\b')
TEXT_KEYS = ('text/plain', 'text/html', 'text/markdown', 'text/latex')   # never image data: base64 holds '/' too

def _last(m): return '…/' + re.split(r'[/\\]', m.group(0).rstrip('/\\'))[-1]

def scrub_text(s:str) -> str:
    "`s` with machine paths shortened and memory addresses replaced"
    s = _site.sub('', s)
    s = _home.sub(_last, s)
    return _addr.sub('at 0x…', s)

def _texts(out):
    "(container, key) of every text field of one output"
    if 'text' in out: yield out, 'text'
    for k in TEXT_KEYS:
        if k in out.get('data', {}): yield out['data'], k
    if 'traceback' in out: yield out, 'traceback'

def _join(v): return ''.join(v) if isinstance(v, list) else v

def found(nb:dict) -> list[str]:
    "The machine paths and addresses still in the outputs of `nb`"
    res = []
    for cell in nb['cells']:
        for out in cell.get('outputs', []):
            for d, k in _texts(out):
                t = _join(d[k]) if k != 'traceback' else '\n'.join(d[k])
                res += [m.group(0) for r in (_home, _addr) for m in r.finditer(t)]
    return res

def scrub_nb(nb:dict) -> dict:
    for cell in nb['cells']:
        for out in cell.get('outputs', []):
            for d, k in _texts(out):
                if k == 'traceback': d[k] = [scrub_text(l) for l in d[k]]
                elif isinstance(d[k], list): d[k] = scrub_text(''.join(d[k])).splitlines(keepends=True)
                else: d[k] = scrub_text(d[k])
    return nb

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('paths', nargs='*', default=['nbs'], help='notebooks or folders (default: nbs)')
    p.add_argument('--check', action='store_true', help='change nothing; fail if an output holds a machine path or address')
    a = p.parse_args(argv)
    files = [f for p_ in map(Path, a.paths) for f in (sorted(p_.rglob('*.ipynb')) if p_.is_dir() else [p_])
             if '.ipynb_checkpoints' not in f.parts and not f.name.startswith('_')]
    bad = 0
    for f in files:
        text = f.read_text(encoding='utf-8')
        nb = json.loads(text)
        if a.check:
            if hits := found(nb): bad += 1; print(f'FAILED: {f}: {len(hits)} machine path(s)/address(es), e.g. {hits[0]!r}')
            continue
        new = nb2str(scrub_nb(nb))   # written as nbdev writes notebooks
        if new != text: f.write_text(new, encoding='utf-8'); print(f'scrubbed {f}')
    if a.check: print(f'{len(files) - bad} notebooks without machine paths, {bad} with')
    return 1 if bad else 0

if __name__ == '__main__': sys.exit(main())
