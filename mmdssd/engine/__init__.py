from .hooks import FuseConvBNHook

__all__ = ['FuseConvBNHook']
