from .map_cross_entropy_loss import map_cross_entropy

__all__ = ['map_cross_entropy']
