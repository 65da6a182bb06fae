"""Run the README's python examples as written and check the figures it quotes.

The code cells of nbs/index.ipynb (the README's source) run in one Python process, one section (a `##`/`###` heading)
at a time, in the order a reader pastes them into a notebook; every top-level expression's value is printed, as a
notebook shows it. After each section a check compares what it did with what the README says, against floors with
some margin (training is seeded where the README seeds it, but other changes can move the figures a little).
Prints one line per section (passed/failed, seconds) and ends with "N passed, N failed"; exits non-zero on a failure.
A cell marked `#| readme_examples: skip` is not run: the one-liners of the NER, QA and summarization sections, which
train what the step-by-step form after them trains (their notebooks test them on tiny models), so CI stays in budget.
Run: python .ci/readme_examples.py [--only SUBSTRING,SUBSTRING] (the sections whose heading has one)
"""
import ast, json, re, sys, time, traceback
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def sections():
    "(heading, code) for each README section with code, the `#|` directives removed (as .ci/readme.py writes it)"
    res, heading = [], None
    for cell in json.loads((root/'nbs'/'index.ipynb').read_text())['cells']:
        src = ''.join(cell['source'])
        if cell['cell_type'] == 'markdown':
            m = re.search(r'^#{2,3} (.+)$', src, re.M)
            if m: heading = m.group(1).strip()
        elif cell['cell_type'] == 'code' and not re.search(r'^#\s*\|\s*(hide|readme_examples:\s*skip)', src, re.M):
            code = '\n'.join(l for l in src.splitlines() if not re.match(r'^#\s*\|', l))
            if res and res[-1][0] == heading: res[-1] = (heading, res[-1][1] + '\n' + code)
            else: res.append((heading, code))
    return res

def run(code:str, ns:dict):
    "Execute `code` in `ns`, printing the value of every top-level expression that has one"
    for node in ast.parse(code).body:
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), '<README>', 'eval'), ns)
            if value is not None: print(repr(value), flush=True)
        else: exec(compile(ast.Module([node], []), '<README>', 'exec'), ns)

def final(learn, name):
    "Metric `name` of the trained model on the validation set (the last row of the progress table, computed again)"
    return dict(zip([m.name for m in learn.metrics], learn.validate()[1:]))[name]

def at_least(what, value, floor): return (value is not None and value >= floor, f"{what} {value if value is None else round(value, 3)} (floor {floor})")

# The README's figures and the floors that keep them honest
def check_seqcls(ns):
    pred = ns['learn'].blurr_predict("a wonderful film")                                   # README: 'fresh', 0.97
    return [at_least('accuracy', final(ns['learn'], 'accuracy'), 0.72), (pred['label'] == 'fresh', f"predicts {pred['label']!r}")]

def check_ner(ns):
    ents = ns['learn'].blurr_predict_tokens("Just landed in London with Taylor Swift")['entities']
    found = {e['text'] for e in ents}                                                      # README: London, Taylor Swift
    return [at_least('entity F1', final(ns['learn'], 'entity_f1'), 0.40), ({'London', 'Taylor Swift'} <= found, f"entities {sorted(found)}")]

def check_qa(ns):
    ans = ns['learn'].blurr_predict_answers("Which person is mentioned?", "Just landed in London with Taylor Swift")
    return [at_least('exact match', final(ns['learn'], 'squad_exact_match'), 0.65), (ans['answer'] == 'Taylor Swift', f"answer {ans['answer']!r}")]

def check_seq2seq(ns):
    learn, acl = ns['learn'], ns['acl']
    sources = list(acl.text[acl.is_valid])
    gen = learn.blurr_summarize(sources, **learn.metrics[0].state.generate_kwargs)          # as the metrics generate them
    n_empty, n_distinct = sum(not g for g in gen), len(set(gen))
    return [at_least('ROUGE-L', final(learn, 'rougeL'), 0.22), (n_empty == 0, f"{n_empty} of {len(gen)} summaries empty"),
            (n_distinct >= len(gen) * 0.9, f"{n_distinct} distinct summaries of {len(gen)}")]

def check_arrow(ns):
    dls = ns['dls']
    n = len(dls.train.token_cache) if dls.train.token_cache is not None else 0
    return [(list(dls.vocab) == ['fresh', 'rotten'], f"vocabulary {list(dls.vocab)}"), (dls.train.sort_chunk == 200, f"sort_chunk {dls.train.sort_chunk}"),
            (n == len(dls.train_ds), f"token ids of {n} of {len(dls.train_ds)} training rows kept"),
            (type(ns['learn'].dls.train_ds.tls[0].tfms.fs[0]).__name__ == 'DatasetReader', "the one-liner reads the Dataset's rows with DatasetReader")]

CHECKS = {'How to use': check_seqcls, 'Named-entity recognition': check_ner, 'Extractive question answering': check_qa,
          'Summarization and translation': check_seq2seq, 'Data larger than memory': check_arrow}

if __name__ == '__main__':
    only = sys.argv[sys.argv.index('--only') + 1].split(',') if '--only' in sys.argv else []
    ns, results = {'__name__': '__main__'}, []
    todo = [(h, c) for h, c in sections() if h in CHECKS]
    missing = set(CHECKS) - {h for h, _ in todo}
    if missing: sys.exit(f"README sections not found in nbs/index.ipynb: {sorted(missing)}")
    for i, (heading, code) in enumerate(todo):
        if only and not any(o in heading for o in only):
            if i == 0: run('\n'.join(l for l in code.splitlines() if l.startswith(('from ', 'import '))), ns)   # the imports the others use
            continue
        print(f"\n== README: {heading}", flush=True)
        start = time.time()
        try:
            run(code, ns)
            checks = CHECKS[heading](ns)
        except Exception: traceback.print_exc(); checks = [(False, 'raised (above)')]
        ok = all(c for c, _ in checks)
        results.append(ok)
        print(f"\n{'passed' if ok else 'FAILED'}: {heading} in {time.time() - start:.0f} s: " + '; '.join(
              ('' if c else 'FAILED ') + d for c, d in checks), flush=True)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    sys.exit(0 if all(results) else 1)
