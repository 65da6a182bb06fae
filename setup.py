from configparser import ConfigParser
from pathlib import Path
import setuptools

here = Path(__file__).parent
cfg = ConfigParser(delimiters=['='])
cfg.read(here/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

licenses = dict(apache2=('Apache Software License 2.0', 'OSI Approved :: Apache Software License'))
lic = licenses[cfg['license']]
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable']
py_versions = '3.10 3.11 3.12 3.13'.split()

requirements = cfg.get('requirements', '').split()
defaults = cfg.get('defaults_requirements', '').split()
dev = cfg.get('dev_requirements', '').split()
docs = cfg.get('docs_requirements', '').split()

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=(here/'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    keywords=cfg['keywords'],
    author=cfg['author'], author_email=cfg['author_email'],
    license=lic[0],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: Developers', 'Natural Language :: English',
                 'License :: ' + lic[1]] +
                ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(cfg['min_python']):]],
    url=f"https://github.com/{cfg['user']}/{cfg['repo']}",
    packages=setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']),
    include_package_data=True,
    install_requires=requirements,
    # `defaults`: the model and data the main job uses; `dev`: everything to run the notebooks, tests and benchmarks;
    # `docs`: what builds and checks the offline docs site (docs/build.py, docs/check_site.py)
    extras_require={'defaults': defaults, 'dev': defaults + dev, 'docs': docs},
    python_requires='>=' + cfg['min_python'],
    zip_safe=False,
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
