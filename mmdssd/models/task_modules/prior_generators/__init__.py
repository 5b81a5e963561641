from .sk_anchor_generator import SkAnchorGenerator, ssd_scale_rule

__all__ = ['SkAnchorGenerator', 'ssd_scale_rule']
