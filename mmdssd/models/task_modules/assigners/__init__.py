from . import tiled_iou2d_calculator
from .batch_max_iou_assigner import BatchMaxIoUAssigner
from .tiled_iou2d_calculator import TiledBboxOverlaps2D, box_iou

__all__ = [
    'BatchMaxIoUAssigner', 'TiledBboxOverlaps2D', 'box_iou',
    'tiled_iou2d_calculator'
]
