"""The docs do not rot: links and images resolve, every ``tools/...`` and
``configs/...`` file they name exists, and every flag they show for one of
our tools is one that tool accepts."""
import glob
import os.path as osp
import re

import pytest

from .conftest import ROOT

DOCS = [osp.join(ROOT, 'README.md')] + sorted(
    glob.glob(osp.join(ROOT, 'docs', '**', '*.md'), recursive=True) +
    glob.glob(osp.join(ROOT, 'configs', '**', 'README.md'), recursive=True))
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
PATH = re.compile(r'(?<![\w/.{}$-])((?:tools|configs)/[\w./-]*\w\.'
                  r'(?:py|sh|yml))(?![\w{}])')
TOOL_CALL = re.compile(r'(?:python\S*|mim run mmdssd)\s+(tools/[\w/]+\.py|'
                       r'[a-z_]+)\b(.*)')
FLAG = re.compile(r'(?<![\w-])(--[a-z][\w-]*)')


def _rel(path: str) -> str:
    return osp.relpath(path, ROOT)


def _code_lines(text: str):
    """Lines of fenced code blocks, ``\\`` continuations joined."""
    for block in re.findall(r'```[a-z]*\n(.*?)```', text, re.S):
        yield from block.replace('\\\n', ' ').splitlines()


def test_the_docs_exist():
    names = {_rel(p) for p in DOCS}
    assert {'README.md', 'docs/en/user_guides/deploy.md',
            'docs/en/user_guides/custom_dataset.md',
            'docs/en/notes/faq.md'} <= names


@pytest.mark.parametrize('doc', DOCS, ids=_rel)
def test_links_and_images_resolve(doc):
    text = open(doc).read()
    broken = []
    for target in LINK.findall(text):
        if re.match(r'[a-z]+:', target) or target.startswith('#'):
            continue  # a URL or an anchor in the same page
        path = osp.normpath(osp.join(osp.dirname(doc), target.split('#')[0]))
        if not osp.exists(path):
            broken.append(target)
    assert not broken, f'{_rel(doc)}: links to missing files: {broken}'


@pytest.mark.parametrize('doc', DOCS, ids=_rel)
def test_named_tools_and_configs_exist(doc):
    missing = sorted({
        path for path in PATH.findall(open(doc).read())
        if not osp.exists(osp.join(ROOT, path))
    })
    assert not missing, f'{_rel(doc)} names missing files: {missing}'


def _accepted_flags(tool: str) -> set:
    """The ``--flags`` a tool's parser defines (its source, and the shared
    arguments of mmdssd/utils/cli.py when it uses them)."""
    source = open(osp.join(ROOT, tool)).read()
    if 'from mmdssd.utils.cli import' in source:
        source += open(osp.join(ROOT, 'mmdssd', 'utils', 'cli.py')).read()
    return set(re.findall(r"['\"](--[a-z][\w-]*)['\"]", source)) | {'--help'}


# `mim run mmdssd NAME` runs tools/**/NAME.py
def _tool_path(name: str) -> str:
    if name.startswith('tools/'):
        return name
    found = glob.glob(osp.join(ROOT, 'tools', '**', name + '.py'),
                      recursive=True)
    return _rel(found[0]) if found else ''


@pytest.mark.parametrize('doc', DOCS, ids=_rel)
def test_shown_flags_are_accepted(doc):
    wrong = []
    for line in _code_lines(open(doc).read()):
        for command in re.split(r'&&|\|\||;|\|', line):
            call = TOOL_CALL.search(command)
            if not call or not _tool_path(call[1]):
                continue
            tool = _tool_path(call[1])
            if not osp.exists(osp.join(ROOT, tool)):
                continue  # reported by test_named_tools_and_configs_exist
            rest = call[2].split('--cfg-options')[0]
            unknown = set(FLAG.findall(rest)) - _accepted_flags(tool)
            wrong += [f'{tool} {flag}' for flag in sorted(unknown)]
    assert not wrong, f'{_rel(doc)} shows flags the tools lack: {wrong}'
