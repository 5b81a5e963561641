from .dssd_head import DSSDHead

__all__ = ['DSSDHead']
