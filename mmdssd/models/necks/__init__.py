from .dssd_neck import DSSDNeck

__all__ = ['DSSDNeck']
