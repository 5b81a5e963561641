from .map_cross_entropy import map_cross_entropy

__all__ = ['map_cross_entropy']
