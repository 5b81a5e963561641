"""A config's text formatted once per content, not at every use."""
import functools
from typing import Callable


def _remember_formatting(format_code: Callable) -> Callable:
    """``format_code`` (yapf's ``FormatCode``, a pure function of the text
    and the style) with its last results kept."""

    @functools.lru_cache(maxsize=8)  # a process formats one or two configs
    def cached(text, style_items, kwargs_items):
        style = dict(style_items) if isinstance(style_items, tuple) else \
            style_items
        return format_code(text, style_config=style, **dict(kwargs_items))

    @functools.wraps(format_code)
    def remembered(text, style_config=None, **kwargs):
        style_items = (tuple(sorted(style_config.items())) if isinstance(
            style_config, dict) else style_config)
        return cached(text, style_items, tuple(sorted(kwargs.items())))

    remembered.remembers_results = True
    return remembered


def remember_config_formatting() -> None:
    """Run yapf once per config text in ``Config.pretty_text``.

    MMEngine formats a config's text with yapf each time ``pretty_text``
    is read, and a runner reads it for the log, the dumped config, the
    visualizer's copy, the message hub and every checkpoint. The
    unformatted text is still built at every read, so a changed config is
    formatted anew; the same text gives the same formatted text as before.
    """
    from mmengine.config import config as config_module
    if not getattr(config_module.FormatCode, 'remembers_results', False):
        config_module.FormatCode = _remember_formatting(
            config_module.FormatCode)
