from .map_cross_entropy_loss import MapCrossEntropyLoss, map_cross_entropy

__all__ = ['MapCrossEntropyLoss', 'map_cross_entropy']
