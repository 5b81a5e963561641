"""mmdssd: DSSD for MMDetection 3.x.

Install with ``bash tools/install.sh`` (it builds mmcv with ops first); a
plain ``pip install --no-build-isolation .`` works on a ready stack.
Like MMDetection, the build copies ``configs/`` and ``tools/`` into
``mmdssd/.mim/`` so that ``mim train/test/run mmdssd ...`` find them in the
installed package (``pip install -e .`` is invisible to mim 0.3.9).
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def add_mim_extension() -> None:
    """Copy (or, for ``setup.py develop``, link) configs/tools into .mim."""
    mode = 'symlink' if 'develop' in sys.argv else 'copy'
    mim_path = osp.join(ROOT, 'mmdssd', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(ROOT, name), osp.join(mim_path, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst)
        elif osp.isfile(src):
            shutil.copyfile(src, dst)
        else:
            shutil.copytree(
                src, dst, ignore=shutil.ignore_patterns('__pycache__'))


def read_requirements(name: str) -> list:
    lines = open(osp.join(ROOT, 'requirements', name)).read().splitlines()
    return [
        line.split('#')[0].strip() for line in lines
        if line.split('#')[0].strip()
    ]


def version() -> str:
    scope: dict = {}
    exec(open(osp.join(ROOT, 'mmdssd', 'version.py')).read(), scope)
    return scope['__version__']


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmdssd',
        version=version(),
        description='DSSD (Deconvolutional Single Shot Detector) for '
        'MMDetection 3.x',
        long_description=open(osp.join(ROOT, 'README.md')).read(),
        long_description_content_type='text/markdown',
        python_requires='>=3.8',
        packages=find_packages(include=('mmdssd', 'mmdssd.*')),
        package_data={'mmdssd': ['.mim/**/*']},
        include_package_data=False,
        install_requires=read_requirements('mminstall.txt') +
        read_requirements('runtime.txt'),
        extras_require=dict(
            torch=read_requirements('torch.txt'),
            tests=read_requirements('tests.txt'),
            extras=read_requirements('extras.txt'),
            deploy=read_requirements('deploy.txt')),
        license='Apache License 2.0',
        zip_safe=False)
