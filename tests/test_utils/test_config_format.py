"""A config's text is formatted once per content, and exactly as before."""
import subprocess
import sys

from mmengine.config import Config
from mmengine.config import config as config_module

from mmdssd.utils.config_format import (_remember_formatting,
                                        remember_config_formatting)
from ..conftest import CONFIGS, TINY


def test_the_same_text_is_formatted_once_and_a_new_text_anew():
    calls = []

    def format_code(text, style_config=None):
        calls.append(text)
        return text.upper(), True

    remembered = _remember_formatting(format_code)
    assert remembered('a = 1', style_config=dict(x=1)) == ('A = 1', True)
    assert remembered('a = 1', style_config=dict(x=1)) == ('A = 1', True)
    assert calls == ['a = 1']
    assert remembered('a = 1', style_config=dict(x=2)) == ('A = 1', True)
    assert remembered('a = 2', style_config=dict(x=1)) == ('A = 2', True)
    assert calls == ['a = 1', 'a = 1', 'a = 2']


def test_pretty_text_is_what_mmengine_alone_writes():
    """Formatted text of a real config, from a process without mmdssd
    (the formatting unchanged), and after the config changes (not the
    text remembered before)."""
    path = f'{CONFIGS}/dssd_r101_voc.py'
    # the config's custom_imports would import mmdssd: not followed there
    bare = subprocess.run(
        [sys.executable, '-c', 'import sys; from mmengine.config import '
         f'Config; cfg = Config.fromfile({path!r}, import_custom_modules='
         "False); assert 'mmdssd' not in sys.modules; "
         'sys.stdout.write(cfg.pretty_text)'],
        capture_output=True, text=True, timeout=300, check=True).stdout
    cfg = Config.fromfile(path)
    assert config_module.FormatCode.remembers_results
    assert cfg.pretty_text == bare
    assert cfg.pretty_text == bare
    cfg.train_cfg.max_epochs = 7
    assert 'max_epochs=7' in cfg.pretty_text.replace(' ', '')
    assert Config.fromfile(TINY).pretty_text != bare


def test_applied_once():
    before = config_module.FormatCode
    remember_config_formatting()
    assert config_module.FormatCode is before
