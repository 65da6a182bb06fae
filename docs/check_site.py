#!/usr/bin/env python
"""Check the built site (`python docs/build.py` first) in headless Chromium, as a reader would meet it: every page loads
without console errors, every internal link resolves (the page exists and so does its `#anchor`), every public name in
every module's `__all__` has an anchor, images load, the pages that show tables have them, and screenshots of the
index and of one tutorial are not blank. One line per check, then `N passed, N failed`; exits non-zero on a failure.

    python docs/check_site.py            # needs Debian's chromium and chromium-driver, and selenium
    python docs/check_site.py --site _site --shots docs/_build/shots"""
import argparse, functools, http.server, json, shutil, socketserver, sys, threading, zlib, struct
from pathlib import Path
from urllib.parse import urljoin, urldefrag, urlparse

ROOT = Path(__file__).resolve().parent.parent
TABLE_PAGES = ('41_tutorial.', '42_tutorial.', '43_tutorial.', '44_tutorial.', '45_tutorial.', '10_data.core')   # show_batch tables

class Checks:
    def __init__(self): self.passed, self.failed = 0, 0
    def __call__(self, ok:bool, what:str, why:str=''):
        if ok: self.passed += 1; print(f'passed: {what}')
        else: self.failed += 1; print(f'FAILED: {what}' + (f': {why}' if why else ''))
        return ok

def serve(folder:Path):
    "An http.server on a free port of localhost serving `folder`; its base URL"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    httpd = socketserver.TCPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f'http://127.0.0.1:{httpd.server_address[1]}/'

def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1280,1600'): opts.add_argument(a)
    opts.binary_location = shutil.which('chromium') or shutil.which('chromium-browser') or ''
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = shutil.which('chromedriver') or '/usr/bin/chromedriver'
    return webdriver.Chrome(service=Service(driver), options=opts)

def png_stats(path:Path) -> tuple[int, int]:
    "(file size, number of distinct rows) of a PNG: a blank screenshot has one distinct row"
    data = path.read_bytes()
    pos, idat, w, h = 8, b'', 0, 0
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos+8]); body = data[pos+8:pos+8+n]; pos += 12 + n
        if kind == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
        elif kind == b'IDAT': idat += body
    raw, bpp = zlib.decompress(idat), {2: 3, 6: 4}.get(ctype, 4)
    stride = w * bpp + 1
    return len(data), len({raw[i*stride+1:(i+1)*stride] for i in range(h)})

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--site', default=str(ROOT/'_site'))
    p.add_argument('--shots', default=str(ROOT/'docs'/'_build'/'shots'), help='where the screenshots go')
    a = p.parse_args(argv)
    site, shots, check = Path(a.site), Path(a.shots), Checks()
    if not check((site/'index.html').exists(), 'the site is built', f'no {site}/index.html: run python docs/build.py'):
        print(f'{check.passed} passed, {check.failed} failed'); return 1
    anchors = json.loads((site/'anchors.json').read_text())
    pages = sorted(f.relative_to(site).as_posix() for f in site.glob('*.html') if f.name != '404.html')
    httpd, base = serve(site)
    drv = browser()
    ids, links = {}, {}
    try:
        for page in pages:
            drv.get(base + page)
            drv.execute_script("return document.readyState")
            errors = [l for l in drv.get_log('browser') if l['level'] == 'SEVERE']
            check(not errors, f'{page}: loads without console errors', '; '.join(e['message'][:200] for e in errors[:3]))
            ids[page] = set(drv.execute_script("return [...document.querySelectorAll('[id]')].map(e => e.id)"))
            links[page] = drv.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)")
            imgs = drv.execute_script("return [...document.images].filter(i => i.closest('article')).map(i => [i.currentSrc.slice(0, 80), i.complete && i.naturalWidth > 0])")
            bad = [s for s, ok in imgs if not ok]
            check(not bad, f'{page}: {len(imgs)} images render', f'{len(bad)} broken, e.g. {bad[:2]}')
            if page.startswith(TABLE_PAGES):
                rows = drv.execute_script("return [...document.querySelectorAll('article table')].map(t => t.rows.length)")
                check(any(r > 1 for r in rows), f'{page}: {len(rows)} tables render', 'no table with rows')
            if page == 'index.html' or page.startswith('41_tutorial.'):
                shots.mkdir(parents=True, exist_ok=True)
                shot = shots/page.replace('.html', '.png')
                drv.save_screenshot(str(shot))
                size, distinct = png_stats(shot)
                check(size > 20_000 and distinct > 50, f'{page}: screenshot {shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot} is not blank',
                      f'{size} bytes, {distinct} distinct rows')
        # internal links: the page exists and its anchor too (on the page as the browser built it)
        broken = []
        for page, hrefs in links.items():
            for href in hrefs:
                if not href.startswith(base): continue
                url, frag = urldefrag(href)
                target = urlparse(url).path.lstrip('/') or 'index.html'
                if target.endswith('/'): target += 'index.html'
                if not (site/target).exists(): broken.append(f'{page} -> {target}'); continue
                if frag and target.endswith('.html') and frag not in ids.get(target, set()): broken.append(f'{page} -> {target}#{frag}')
        n = sum(1 for h in links.values() for x in h if x.startswith(base))
        check(not broken, f'{n} internal links resolve', f'{len(broken)} broken, e.g. {broken[:5]}')
        # every public name has an anchor on the page that documents it
        missing = [f'{n} ({a})' for n, a in anchors.items() if a.split('#')[1] not in ids.get(a.split('#')[0], set())]
        public = _public_names()
        unlisted = sorted(set(public) - set(anchors))
        check(not missing and not unlisted, f'{len(public)} public names of every module\'s __all__ have an anchor',
              f'{len(missing)} without one on their page, e.g. {missing[:5]}; {len(unlisted)} not documented, e.g. {unlisted[:5]}')
    finally:
        drv.quit(); httpd.shutdown()
    print(f'{check.passed} passed, {check.failed} failed')
    return 1 if check.failed else 0

def _public_names() -> list[str]:
    "Every name in the `__all__` of every blurr module but the star-import faces"
    import importlib, pkgutil
    sys.path.insert(0, str(ROOT))
    import blurr
    names = []
    for m in pkgutil.walk_packages(blurr.__path__, 'blurr.'):
        if m.name.endswith('.all') or m.name.split('.')[-1].startswith('_'): continue
        names += getattr(importlib.import_module(m.name), '__all__', [])
    return names

if __name__ == '__main__': sys.exit(main())
