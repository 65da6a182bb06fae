"Write README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which this project's machines lack)."
import json, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
nb = json.loads((root/'nbs'/'index.ipynb').read_text())
parts = []
for cell in nb['cells']:
    src = ''.join(cell['source'])
    if cell['cell_type'] == 'markdown':
        # nbdev's title cell: "# Title\n> summary" reads better as a heading and a quote
        parts.append(src)
    elif cell['cell_type'] == 'code':
        lines = [l for l in src.splitlines() if not re.match(r'^#\s*\|', l)]
        if lines and not any(re.match(r'^#\s*\|\s*hide', l) for l in src.splitlines()):
            parts.append('```python\n' + '\n'.join(lines).strip() + '\n```')
text = '\n\n'.join(parts) + '\n'
if '--check' in sys.argv:
    sys.exit(0 if (root/'README.md').read_text() == text else 'README.md is not what nbs/index.ipynb makes: run python .ci/readme.py')
(root/'README.md').write_text(text)
