"""Fitting a run to a wall-time budget: the step times measured before
training fix the first schedule, the hook refits it as the run goes."""
from .step_times import (fit_iterations, measure_step_times,
                         measure_step_times_in_turns)
from .time_budget_hook import TimeBudgetHook

__all__ = [
    'TimeBudgetHook', 'fit_iterations', 'measure_step_times',
    'measure_step_times_in_turns'
]
