"""Default boxes by the SSD paper's s_k scale rule (SSD section 2.2)."""
import math
from typing import List, Optional, Sequence, Tuple, Union

from mmdet.models.task_modules.prior_generators import SSDAnchorGenerator
from mmdet.registry import TASK_UTILS

Stride = Union[float, Tuple[float, float]]


def ssd_scale_rule(num_levels: int,
                   s_min: float,
                   s_max: float,
                   first_level: Optional[Tuple[float, float]] = None,
                   integer_percent: bool = False
                   ) -> Tuple[List[float], List[float]]:
    """Per-level min/max box scales, as fractions of the input side.

    ``s_k = s_min + (s_max - s_min) / (m - 1) * (k - 1)`` for ``k = 1..m``;
    the max scale of level ``k`` is ``s_{k+1}`` (extrapolated for the last
    level), so the extra square box has side ``sqrt(s_k * s_{k+1})``.

    Args:
        num_levels (int): Number of feature levels ``m``.
        s_min (float): Scale of the first level following the rule.
        s_max (float): Scale of the last level.
        first_level (tuple[float, float], optional): Explicit ``(min, max)``
            scales of level 1; the rule then spans levels 2..m (what the
            SSD/DSSD Caffe scripts do, e.g. ``(0.1, 0.2)``).
        integer_percent (bool): Work in integer percents with the step
            floored, as the Caffe scripts and MMDetection's
            ``SSDAnchorGenerator`` do. Defaults to False (the exact rule).

    Returns:
        tuple[list[float], list[float]]: min and max scales per level.
    """
    if num_levels < 1:
        raise ValueError(f'num_levels must be >= 1, got {num_levels}')
    if not 0 < s_min < s_max:
        raise ValueError(
            f'need 0 < s_min < s_max, got s_min={s_min}, s_max={s_max}')
    if first_level is not None:
        lo, hi = first_level
        if not 0 < lo <= hi:
            raise ValueError(f'first_level must be (min, max) with '
                             f'0 < min <= max, got {tuple(first_level)}')
    m = num_levels - (first_level is not None)
    if m == 0:
        return [first_level[0]], [first_level[1]]
    if integer_percent:
        lo_pct, hi_pct = int(round(s_min * 100)), int(round(s_max * 100))
        step = (int(math.floor((hi_pct - lo_pct) / (m - 1)))
                if m > 1 else hi_pct - lo_pct)
        if step <= 0:
            raise ValueError(
                f'integer_percent: s_min={s_min} and s_max={s_max} are too '
                f'close for {m} levels (step of {step}%)')
        pcts = [lo_pct + step * k for k in range(m + 1)]
        scales = [p / 100 for p in pcts]
    else:
        step = (s_max - s_min) / (m - 1) if m > 1 else s_max - s_min
        scales = [s_min + step * k for k in range(m + 1)]
    mins, maxs = scales[:-1], scales[1:]
    if first_level is not None:
        mins.insert(0, first_level[0])
        maxs.insert(0, first_level[1])
    return mins, maxs


@TASK_UTILS.register_module()
class SkAnchorGenerator(SSDAnchorGenerator):
    """SSD/DSSD default boxes from the s_k scale rule.

    Level ``k`` gets a square box of side ``s_k * L``, an extra square box
    of side ``sqrt(s_k * s_{k+1}) * L`` and, for each ratio ``a``, boxes of
    width ``s_k * L * sqrt(a)`` and height ``s_k * L / sqrt(a)`` and their
    transposes, where ``L`` is the shorter input side (Caffe's ``min_dim``).
    Centres sit half a stride in on every level, i.e. at
    ``((i + 0.5) / |f_k|, (j + 0.5) / |f_k|)`` of the input when the stride
    is ``input / |f_k|`` (not the Caffe DSSD code's offset "start" values,
    which put boxes off the image).

    The box layout and order are those of MMDetection's
    :class:`SSDAnchorGenerator` (which this class reuses to build them), so
    with the SSD300/SSD512 settings the base anchors are identical to it.

    Args:
        strides (list[int | float | tuple]): Anchor stride per level. For a
            level of ``n`` cells over ``S`` input pixels use ``S / n``.
        ratios (list[float] | list[list[float]]): Aspect ratios ``a > 1`` per
            level (each adds ``a`` and ``1 / a``); a flat list is used on
            every level. DSSD uses ``[1.6, 2, 3]`` everywhere (8 boxes).
        input_size (int | tuple[int, int]): Network input ``S`` or
            ``(h, w)``; box sizes are fractions of the shorter side.
        s_min (float): Smallest scale of the rule. Defaults to 0.2.
        s_max (float): Largest scale. Defaults to 0.9.
        first_level (tuple[float, float], optional): Explicit (min, max)
            scales of the first level, e.g. ``(0.1, 0.2)``. Defaults to None.
        integer_percent (bool): Caffe's integer-percent step (floored).
            Defaults to False.
        int_sizes (bool): Truncate pixel sizes to integers, as Wei Liu's SSD
            scripts (Python 2 division) and MMDetection's SSD do. The DSSD
            Caffe scripts do not. Defaults to False.
        scale_major (bool): Passed to :class:`AnchorGenerator`; SSD uses
            False. Defaults to False.
        use_box_type (bool): Wrap anchors in a box type. Defaults to False.
    """

    def __init__(self,
                 strides: Sequence[Stride],
                 ratios: Union[Sequence[float], Sequence[Sequence[float]]],
                 input_size: Union[int, Tuple[int, int]] = 320,
                 s_min: float = 0.2,
                 s_max: float = 0.9,
                 first_level: Optional[Tuple[float, float]] = None,
                 integer_percent: bool = False,
                 int_sizes: bool = False,
                 scale_major: bool = False,
                 use_box_type: bool = False) -> None:
        num_levels = len(strides)
        if num_levels == 0:
            raise ValueError('strides must name at least one level')
        ratios = self._per_level_ratios(ratios, num_levels)
        if isinstance(input_size, (tuple, list)):
            if len(input_size) != 2 or min(input_size) <= 0:
                raise ValueError(
                    f'input_size must be S or (h, w), got {input_size}')
            min_dim = min(input_size)
        else:
            if input_size <= 0:
                raise ValueError(f'input_size must be > 0, got {input_size}')
            min_dim = input_size
        min_scales, max_scales = ssd_scale_rule(num_levels, s_min, s_max,
                                                first_level, integer_percent)
        to_px = self._to_pixels(min_dim, int_sizes)
        self.min_sizes = [to_px(s) for s in min_scales]
        self.max_sizes = [to_px(s) for s in max_scales]
        self.s_min, self.s_max = s_min, s_max
        self.first_level = first_level
        super().__init__(
            strides=strides,
            ratios=ratios,
            min_sizes=self.min_sizes,
            max_sizes=self.max_sizes,
            input_size=input_size,
            scale_major=scale_major,
            use_box_type=use_box_type)
        self.input_size = input_size
        self.basesize_ratio_range = (s_min, s_max)

    @staticmethod
    def _to_pixels(min_dim: float, int_sizes: bool):
        """Scale -> pixels, computed as ``L * percent / 100`` like Caffe so
        that e.g. 0.38 * 321 gives 121.98, not 121.97999999999999."""

        def to_px(scale: float) -> float:
            px = min_dim * round(scale * 100, 9) / 100
            return int(px) if int_sizes else round(px, 9)

        return to_px

    @staticmethod
    def _per_level_ratios(ratios, num_levels: int) -> List[List[float]]:
        if len(ratios) == 0:
            raise ValueError('ratios must not be empty')
        if not isinstance(ratios[0], (list, tuple)):
            ratios = [list(ratios)] * num_levels
        if len(ratios) != num_levels:
            raise ValueError(
                f'ratios has {len(ratios)} levels but strides has '
                f'{num_levels}')
        for level, level_ratios in enumerate(ratios):
            if len(level_ratios) == 0:
                raise ValueError(f'ratios[{level}] is empty')
            for r in level_ratios:
                if r <= 0:
                    raise ValueError(
                        f'ratios[{level}] holds {r}; ratios must be > 0')
        return [list(r) for r in ratios]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(strides={self.strides}, '
                f'input_size={self.input_size}, s_min={self.s_min}, '
                f's_max={self.s_max}, first_level={self.first_level}, '
                f'min_sizes={self.min_sizes}, max_sizes={self.max_sizes}, '
                f'ratios={[r.tolist() for r in self.ratios]})')
