"""Every task on the device at hand (CUDA when there is one): a training step in fp32, bf16 and fp16, predictions, and
blurr_save/blurr_load and export/load_learner round trips, on tiny models built offline. Prints one line per check and
ends with "N passed, N failed". Run by benchmarks/gpu_check.sh; `python benchmarks/gpu_check.py` runs it alone."""
import sys, tempfile, time, traceback, warnings
from pathlib import Path
warnings.simplefilter('ignore')
import pandas as pd, torch
from fastai.text.all import *
from blurr.data.all import *
from blurr.modeling.all import *
from blurr.testing import tiny_hf_folder, tiny_corpus

device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
texts = tiny_corpus(64)
valid = [i % 4 == 0 for i in range(64)]
cls_df = pd.DataFrame({'text': texts, 'label': ['question' if '?' in t else 'statement' for t in texts], 'is_valid': valid})
words = [t.replace('.', ' .').replace(',', ' ,').replace('?', ' ?').replace('!', ' !').split() for t in texts]
ner_df = pd.DataFrame({'words': words, 'tags': [['B-name' if i and w[0].isupper() else 'O' for i, w in enumerate(ws)] for ws in words], 'is_valid': valid})
qa_df = pd.DataFrame({'question': ['Who is it?'] * 64, 'context': texts, 'is_valid': valid,
                      'answers': [{'text': [t.split()[0]], 'answer_start': [0]} for t in texts]})
s2s_df = pd.DataFrame({'text': [a + ' ' + b for a, b in zip(texts[:32], texts[32:])], 'summary': texts[:32], 'is_valid': valid[:32]})

def learners():
    yield 'classification', classification_learner(cls_df, tiny_hf_folder('bert'), bs=8), lambda l: l.blurr_predict(texts[:4])
    yield 'ner', ner_learner(ner_df, tiny_hf_folder('roberta'), bs=8), lambda l: l.blurr_predict_tokens(texts[:4])
    yield 'qa', qa_learner(qa_df, tiny_hf_folder('bert'), max_length=48, bs=8), lambda l: l.blurr_predict_answers(['Who is it?'] * 2, texts[:2])
    yield 'summarization', summarization_learner(s2s_df, tiny_hf_folder('bart'), max_target_length=12, bs=8, metrics=seq2seq_metrics(max_new_tokens=4)), \
          lambda l: l.blurr_generate(texts[:4], max_new_tokens=6)
    yield 'causal_lm', causal_lm_learner(cls_df, tiny_hf_folder('llama'), max_length=24, bs=8), lambda l: l.blurr_generate(texts[:4], max_new_tokens=6)
    yield 'masked_lm', masked_lm_learner(cls_df, tiny_hf_folder('bert'), max_length=24, bs=8), lambda l: l.blurr_fill_mask('The [MASK] cat sat.', top_k=3)

results = []
def check(name, fn):
    t0 = time.perf_counter()
    try: detail = fn() or ''; ok = True
    except Exception: detail, ok = traceback.format_exc(limit=3).strip().splitlines()[-1], False
    results.append(ok)
    print(f"{'passed' if ok else 'FAILED'}: {name} ({time.perf_counter() - t0:.1f} s) {detail}", flush=True)

print(f"# device {device}" + (f" ({torch.cuda.get_device_name()})" if device.type == 'cuda' else ''), flush=True)
tmp = Path(tempfile.mkdtemp())
for task, learn, predict in learners():
    learn.dls.to(device); learn.model.to(device)
    for precision in ('fp32', 'bf16', 'fp16'):
        if precision == 'fp16' and device.type != 'cuda': continue
        def step():
            l = learn
            if precision == 'bf16': l = learn.to_bf16()
            if precision == 'fp16': l = learn.to_fp16()
            with l.no_bar(), l.no_logging(): l.fit(1, 1e-3, cbs=ShortEpochCallback(pct=0.3, short_valid=True))
            loss = l.recorder.losses[-1].item()
            l.to_fp32()
            assert loss == loss, 'the loss is NaN'
            return f"loss {loss:.3f}, model on {next(l.model.parameters()).device}"
        check(f"{task} step {precision}", step)
    def predict_and_reload():
        before = predict(learn)
        loaded = blurr_load(learn.blurr_save(tmp/task))
        loaded.dls.to(device); loaded.model.to(device)
        assert str(predict(loaded)) == str(before), 'blurr_load predicts otherwise'
        learn.export(tmp/f'{task}.pkl')
        assert str(predict(load_learner(tmp/f'{task}.pkl', cpu=device.type != 'cuda'))) == str(before), 'load_learner predicts otherwise'
        return str(before)[:80]
    check(f"{task} predict, blurr_save/blurr_load, export/load_learner", predict_and_reload)
class SyncWarnings(Callback):
    "torch's CUDA sync debug mode over the training steps only (first before_batch to after_train), its warnings kept"
    order = -1000
    def before_fit(self): self.caught, self.steps, self.on = [], 0, None
    def before_batch(self):
        if not self.training: return
        self.steps += 1
        if self.on is None:
            self.on = warnings.catch_warnings(record=True); self.caught = self.on.__enter__()
            warnings.simplefilter('always'); torch.cuda.set_sync_debug_mode('warn')
    def after_train(self):
        if self.on is not None: torch.cuda.set_sync_debug_mode(0); self.on.__exit__(None, None, None); self.on = None

def syncs_per_step(learn):
    "Where a BlurrLearner's training step waits for the GPU (BlurrRecorder and BlurrProgressCallback read nothing; the model may, and HF_LogitsAtTargets reads the number of targets)"
    learn.dls.to(device); learn.model.to(device)
    cb = SyncWarnings()
    learn.fit(1, 1e-3, cbs=cb)
    where = pd.Series([f"{Path(w.filename).name}:{w.lineno}" for w in cb.caught]).value_counts()
    return f"{len(cb.caught) / max(cb.steps, 1):.1f} a step over {cb.steps} steps; " + ', '.join(f"{k} x{v}" for k, v in where.head(4).items())
if device.type == 'cuda':
    check("classification: CUDA syncs in training steps", lambda: syncs_per_step(classification_learner(cls_df, tiny_hf_folder('bert'), bs=8)))
    check("masked_lm: CUDA syncs in training steps", lambda: syncs_per_step(masked_lm_learner(cls_df, tiny_hf_folder('bert'), max_length=24, bs=8)))
    # causal rows carry no attention mask, so transformers' mask builder reads nothing on the host; HF_LogitsAtTargets reads one count
    check("causal_lm: CUDA syncs in training steps", lambda: syncs_per_step(causal_lm_learner(cls_df, tiny_hf_folder('llama'), max_length=24, bs=8)))
print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
sys.exit(0 if all(results) else 1)
