#!/usr/bin/env python
"""Build the documentation site offline, without Quarto, from the notebooks: the one source of truth.

    python docs/build.py              # writes the site to _site/ (open _site/index.html)
    python -m http.server -d _site    # or serve it: http://localhost:8000

1. nbdev processes the notebooks for docs exactly as `nbdev-docs` does before Quarto renders them
   (nbdev's `FilterDefaults` processors, into `docs/_build/proc/`): `#| hide` and exported cells go, a `show_doc` is added for every exported
   name and the `show_doc` cells are run, so the API reference shows signatures and argument comments.
2. What Quarto would read in those notebooks is turned into what Jupyter renders: the front matter into a title,
   directive lines dropped, `show_doc` inputs hidden, fenced divs removed (into `docs/_build/src/`).
3. mkdocs-material with mkdocs-jupyter renders them (`docs/mkdocs.yml`; the nav is made from the notebooks' titles).
4. The HTML is post-processed: every public name in a module's `__all__` gets an anchor whose `id` is its name, and
   backticked public names become links to their anchor on whichever page documents them.
Where Quarto is installed, `nbdev-docs` builds the Quarto site from the same notebooks (into `_docs/`)."""
import argparse, ast, html, importlib, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS, BUILD, SITE = ROOT/'docs', ROOT/'docs'/'_build', ROOT/'_site'
SRC = BUILD/'src'
TUTORIAL = re.compile(r'^4\d_tutorial\.')

# ---- 1. nbdev's processing
PROC = BUILD/'proc'

def _procs():
    """nbdev's docs processors, with two changes: a test cell that imports and does more runs only its imports, and a
    `show_doc` that fails is rendered plainly (and reported) instead of stopping the build"""
    from nbdev.processors import FilterDefaults, exec_show_docs, _do_eval, _show_docs
    class exec_docs(exec_show_docs):
        # nbdev runs every cell holding an import to render the docs; a test cell that also uses names of earlier
        # (unrun) test cells then fails the build, so only such a cell's imports run
        def __call__(self, cell):
            if getattr(self.nb, 'has_docs_', None) and hasattr(self, 'k') and _do_eval(cell):
                trees, d = cell.parsed_(), cell.directives_
                imports = [t for t in trees if isinstance(t, (ast.Import, ast.ImportFrom))]
                if not d.keys() & {'export', 'exports', 'exporti', 'exec_doc'} and not _show_docs(trees) and len(imports) < len(trees):
                    self.k.run_cell('\n'.join(ast.unparse(t) for t in imports)); return
            m = re.search(r'^show_doc\(\s*([\w.]+)', cell.source or '', re.MULTILINE)
            try: super().__call__(cell)
            except Exception as e:
                if not m: raise
                self.k.exc = None
                cell.outputs = [_fallback_doc(self.k.user_ns, m.group(1), e)]
            else:   # a `@typedispatch` function: show_doc shows nothing
                if m and getattr(self.nb, 'has_docs_', None) and not cell.get('outputs'):
                    cell.outputs = [_fallback_doc(self.k.user_ns, m.group(1), None)]
    class Filter(FilterDefaults):
        def base_procs(self): return [exec_docs if p is exec_show_docs else p for p in super().base_procs()]
    return Filter()

DOC_FAILURES = []   # show_doc cells nbdev could not run: reported at the end, rendered plainly

def _fallback_doc(ns:dict, name:str, e:Exception) -> dict:
    "What `show_doc` shows, made without evaluating annotations, for a name whose `show_doc` fails"
    import inspect
    obj = eval(name, ns)
    if e is not None: DOC_FAILURES.append(f'show_doc({name}): {type(e.__cause__ or e).__name__}: {e.__cause__ or e}')
    if type(obj).__name__ == 'TypeDispatch':
        md = (f"---\n\n### {name}\n\n*A type-dispatched function (fastcore's `typedispatch`): the implementation this module adds "
              f"is chosen by the types of its first arguments; its code is in the cell above.*\n")
        return {'output_type': 'display_data', 'metadata': {}, 'data': {'text/markdown': md, 'text/plain': name}}
    try: sig = str(inspect.signature(obj))
    except (TypeError, ValueError): sig = ''
    md = f"---\n\n### {name}\n\n>      {name.split('.')[-1]} {sig}\n\n*{inspect.getdoc(obj) or ''}*\n"
    return {'output_type': 'display_data', 'metadata': {}, 'data': {'text/markdown': md, 'text/plain': name}}

def split_show_docs(nb:dict) -> dict:
    "One `show_doc` per cell: a cell shows only its last expression, so `show_doc(a)\\nshow_doc(b)` would document `b` alone"
    cells = []
    for cell in nb['cells']:
        src = _src(cell)
        try: body = ast.parse(src).body if cell['cell_type'] == 'code' else []
        except SyntaxError: body = []
        calls = [t for t in body if isinstance(t, ast.Expr) and getattr(getattr(t.value, 'func', None), 'id', None) == 'show_doc']
        if len(calls) > 1 and len(calls) == len(body):
            directives = ''.join(l + '\n' for l in src.splitlines() if l.lstrip().startswith('#|'))
            cells += [{**cell, 'source': directives + ast.unparse(t), 'outputs': []} for t in calls]
        else: cells.append(cell)
    return {**nb, 'cells': cells}

def proc_notebooks(force:bool=False) -> Path:
    "Process the notebooks as `nbdev-docs` does before Quarto renders them (no Quarto needed); the folder they are in"
    from fastcore.nbio import dict2nb, write_nb
    from nbdev.doclinks import nbglob
    os.chdir(ROOT)
    import nbdev.doclinks; nbdev.doclinks._build_modidx()   # as nbdev-docs does first, so links point at current names
    PROC.mkdir(parents=True, exist_ok=True)
    os.environ['IN_TEST'] = '1'   # as nbdev's docs workers run
    for src in nbglob(ROOT/'nbs', func=Path):
        dst = PROC/src.name
        if not force and dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime: continue
        nb = dict2nb(split_show_docs(json.loads(src.read_text(encoding='utf-8'))))
        nb.path_ = str(src)   # as read_nb sets it: nbdev's front matter needs it
        _procs()(nb)
        write_nb(nb, dst)
    for f in PROC.glob('*.ipynb'):
        if not (ROOT/'nbs'/f.name).exists(): f.unlink()
    return PROC

# ---- 2. from Quarto's reading to Jupyter's
_directive = re.compile(r'^\s*#\|.*$\n?', re.MULTILINE)
_fence = re.compile(r'^:::.*$\n?', re.MULTILINE)

def _src(cell) -> str: return ''.join(cell['source']) if isinstance(cell.get('source'), list) else cell.get('source', '')

def _frontmatter(src:str) -> dict:
    "title and description from the YAML front matter nbdev puts in a raw cell"
    res = {}
    for line in src.strip().strip('-').splitlines():
        k, _, v = line.partition(':')
        if v.strip(): res[k.strip()] = v.strip().strip('"\'')
    return res

def jupyter_nb(nb:dict) -> tuple[dict, str]:
    "A processed notebook as Jupyter renders it, and its title"
    cells, title = [], None
    for cell in nb['cells']:
        src = _src(cell)
        if cell['cell_type'] == 'raw' and src.lstrip().startswith('---'):
            fm = _frontmatter(src)
            title = fm.get('title')
            md = f"# {title}\n" + (f"\n> {fm['description']}\n" if fm.get('description') else '')
            cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': md})
            continue
        if cell['cell_type'] == 'markdown':
            cell = {**cell, 'source': _fence.sub('', src)}
            if not cell['source'].strip(): continue
        elif cell['cell_type'] == 'code':
            hide = re.search(r'#\|\s*echo:\s*false', src) is not None
            tags = list(cell.get('metadata', {}).get('tags', [])) + (['hide-input'] if hide else [])
            cell = {**cell, 'source': _directive.sub('', src).strip('\n'), 'metadata': {'tags': tags}}   # run metadata fails nbformat's schema
            if not cell['source'].strip() and not cell.get('outputs'): continue
        cells.append(cell)
    return {**nb, 'cells': cells}, title

# ---- public names: which module each notebook exports, and its `__all__`
def default_exp(nb_path:Path) -> str|None:
    src = '\n'.join(_src(c) for c in json.loads(nb_path.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'code')
    m = re.search(r'^\s*#\|\s*default_exp\s+(\S+)', src, re.MULTILINE)
    return m.group(1) if m else None

def public_names(module:str) -> list[str]:
    "`__all__` of `blurr.<module>`"
    return list(getattr(importlib.import_module(f'blurr.{module}'), '__all__', []))

def _is_constant(module:str, name:str) -> bool:
    "A value rather than a class or function (instances included): `show_doc` has nothing to say about it"
    import inspect
    obj = getattr(importlib.import_module(f'blurr.{module}'), name)
    return not (inspect.isclass(obj) or inspect.isroutine(obj) or type(obj).__name__ == 'TypeDispatch')

def _comment_of(module:str, name:str) -> str:
    "The comment beside a module-level assignment of `name`, or its type"
    path = ROOT/'blurr'/(module.replace('.', '/') + '.py')
    for line in path.read_text(encoding='utf-8').splitlines():
        if re.match(rf'^{re.escape(name)}\s*(:[^=]*)?=', line) and '#' in line: return line.split('#', 1)[1].strip()
    obj = getattr(importlib.import_module(f'blurr.{module}'), name)
    doc = type(obj).__dict__.get('__doc__')
    doc = doc.strip().splitlines() if isinstance(doc, str) else []
    return f'A `{type(obj).__name__}`' + (f': {doc[0]}' if doc and type(obj).__module__.startswith('blurr') else '.')

def _shown_names(nb:dict) -> set[str]:
    "Names whose `show_doc` ran in the processed notebook"
    res = set()
    for cell in nb['cells']:
        for name in re.findall(r'show_doc\(\s*([\w.]+)', _src(cell)): res.add(name)
    return res

def add_constants(nb:dict, module:str):
    "A section for the public names `show_doc` cannot document (constants), so every name in `__all__` has a place"
    names = [n for n in public_names(module) if n not in _shown_names(nb) and _is_constant(module, n)]
    if not names: return
    md = '## Constants\n\n' + ''.join(f'<h4 id="{n}" class="doc-name"><code>{n}</code></h4>\n\n{_comment_of(module, n)}\n\n' for n in names)
    nb['cells'].append({'cell_type': 'markdown', 'metadata': {}, 'source': md})

def write_sources(proc:Path) -> list[tuple[str, str, bool]]:
    "Processed notebooks for mkdocs in `docs/_build/src`; (file, title, is_tutorial) of each, in nbdev's order"
    if SRC.exists(): shutil.rmtree(SRC)
    SRC.mkdir(parents=True)
    pages = []
    for f in sorted(proc.glob('*.ipynb')):
        nb, title = jupyter_nb(json.loads(f.read_text(encoding='utf-8')))
        src_nb = ROOT/'nbs'/f.name
        if (mod := default_exp(src_nb)) if src_nb.exists() else None: add_constants(nb, mod)
        (SRC/f.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
        pages.append((f.name, title or f.stem, bool(TUTORIAL.match(f.name))))
    for f in (ROOT/'nbs').glob('*'):   # images and data a notebook links to
        if f.suffix.lower() in ('.png', '.jpg', '.jpeg', '.svg', '.gif'): shutil.copy2(f, SRC/f.name)
    return pages

# ---- 3. mkdocs
def mkdocs_config(pages) -> Path:
    "`docs/_build/mkdocs.yml`: `docs/mkdocs.yml` with the nav made from the notebooks"
    def entry(f, t): return f'    - "{t.replace(chr(34), chr(39))}": {f}\n'
    tutorials = ''.join(entry(f, t) for f, t, tut in pages if tut)
    reference = ''.join(entry(f, t) for f, t, tut in pages if not tut and f != 'index.ipynb')
    cfg = (f"INHERIT: ../mkdocs.yml\ndocs_dir: src\nsite_dir: {os.path.relpath(SITE, BUILD)}\n"
           f"nav:\n  - Home: index.ipynb\n  - Tutorials:\n{tutorials}  - API reference:\n{reference}")
    p = BUILD/'mkdocs.yml'; p.write_text(cfg, encoding='utf-8')
    return p

def run_mkdocs(cfg:Path):
    subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--clean', '-q', '-f', str(cfg)], check=True, cwd=BUILD,
                   env={**os.environ, 'NO_MKDOCS_2_WARNING': '1'})   # mkdocs-material's notice of its successor (zensical)

# ---- 4. anchors and cross-links
def anchor_map(pages) -> dict[str, str]:
    "Public name -> `page.html#name`, for every name of every module's `__all__` (and the patched `Learner.blurr_*` methods shown)"
    res = {}
    for f, _, _ in pages:
        src_nb = ROOT/'nbs'/f
        mod = default_exp(src_nb) if src_nb.exists() else None
        if not mod or mod.endswith('all'): continue
        page = f.replace('.ipynb', '.html')
        for n in public_names(mod): res.setdefault(n, f'{page}#{n}')
        for n in _shown_names(json.loads((SRC/f).read_text(encoding='utf-8'))): res.setdefault(n, f'{page}#{n}')
    return res

_heading = re.compile(r'<(h[2-4])([^>]*)>(.*?)</\1>', re.S)
_tag = re.compile(r'<[^>]+>')

def _key(name:str) -> str: return re.sub(r'[_\s]', '', name).lower()   # `__getitem__` renders as bold getitem

def _text(s): return html.unescape(_tag.sub('', s)).replace('¶', '').strip()

def fix_page(text:str, page:str, anchors:dict) -> str:
    "Heading ids equal to the documented name; backticked public names linked; links to notebooks go to their pages"
    names = {a.split('#')[1] for a in anchors.values() if a.split('#')[0] == page}
    here = {**{_key(n): n for n in names}, **{n: n for n in names}}   # the exact name first: `blurr_task` is not `BlurrTask`
    moved = {}   # old id -> the name, so the table of contents and permalinks follow
    def heading(m):
        tag, attrs, inner = m.groups()
        name = here.get(_text(inner)) or here.get(_key(_text(inner)))
        if name and f'id="{name}"' not in attrs:
            if (old := re.search(r'\sid="([^"]*)"', attrs)): moved[old.group(1)] = name
            attrs = re.sub(r'\sid="[^"]*"', '', attrs) + f' id="{name}"'
        return f'<{tag}{attrs}>{inner}</{tag}>'
    text = _heading.sub(heading, text)
    text = re.sub(r'href="#([^"]*)"', lambda m: f'href="#{moved.get(m.group(1), m.group(1))}"', text)
    # mkdocs-jupyter's table of contents slugs headings its own way ("fastai's `predict`" -> #fastais, nbconvert's id
    # is fastais-predict): point each entry at the heading with its text
    ids = set(re.findall(r'\sid="([^"]+)"', text))
    by_text = {_key(_text(m.group(3))): re.search(r'\sid="([^"]+)"', m.group(2)).group(1)
               for m in _heading.finditer(text) if re.search(r'\sid="', m.group(2))}
    def toc(m):
        href, inner = m.group(1), m.group(2)
        if href in ids: return m.group(0)
        # its text is cut at the first code span ("fastai's"): else the heading whose id starts with the slug; else the top
        new = by_text.get(_key(_text(inner))) or next((i for i in sorted(ids) if i.startswith(href + '-')), '')
        return m.group(0).replace(f'href="#{href}"', f'href="#{new}"')
    text = re.sub(r'<a href="#([^"]*)" class="md-nav__link">([\s\S]*?)</a>', toc, text)
    nbdev_site = r'https?://[^"]*?/'   # nbdev links to its hosted pages: point them here instead
    text = re.sub(rf'href="{nbdev_site}([\w.]+)\.html#([\w.-]+)"', lambda m: _local(m, anchors), text)
    # the rest of the page only outside code blocks: backticked public names become links
    parts = re.split(r'(<pre[\s\S]*?</pre>|<a\b[\s\S]*?</a>|<h[1-4][\s\S]*?</h[1-4]>)', text)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r'<code>([A-Za-z_][\w.]*)(\(\))?</code>',
                          lambda m: (f'<a href="{_rel(anchors[m.group(1)], page)}"><code>{m.group(1)}{m.group(2) or ""}</code></a>'
                                     if m.group(1) in anchors else m.group(0)), parts[i])
    text = ''.join(parts)
    return re.sub(r'href="((?:\./)?[\w.-]+)\.ipynb(#[^"]*)?"', r'href="\1.html\2"', text)

def _rel(anchor:str, page:str) -> str: return anchor[len(page):] if anchor.startswith(page + '#') else anchor

def _local(m, anchors):
    "A link nbdev made to its hosted docs, pointed at this site's anchor"
    for name, a in anchors.items():
        if name.lower() == m.group(2).lower() or name.lower().replace('.', '') == m.group(2).lower().replace('.', ''): return f'href="{a}"'
    return f'href="{m.group(1)}.html"'

def postprocess(pages):
    anchors = anchor_map(pages)
    for f, _, _ in pages:
        p = SITE/f.replace('.ipynb', '.html')
        p.write_text(fix_page(p.read_text(encoding='utf-8'), p.name, anchors), encoding='utf-8')
    (SITE/'anchors.json').write_text(json.dumps(anchors, indent=1), encoding='utf-8')   # what check_site.py verifies
    return anchors

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--force', action='store_true', help='process every notebook again (nbdev caches by modification time)')
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    proc = proc_notebooks(a.force); print(f'processed the notebooks into {proc.relative_to(ROOT)}/ ({time.perf_counter() - t0:.0f} s)')
    pages = write_sources(proc)
    run_mkdocs(mkdocs_config(pages))
    anchors = postprocess(pages)
    for f in DOC_FAILURES: print(f'WARNING: nbdev could not render {f} (shown without types)')
    print(f'built {len(pages)} pages, {len(anchors)} public names, into {SITE.relative_to(ROOT)}/ ({time.perf_counter() - t0:.0f} s): open {SITE.relative_to(ROOT)}/index.html')

if __name__ == '__main__': main()
