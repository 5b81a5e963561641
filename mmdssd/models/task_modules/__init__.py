from .prior_generators import *  # noqa: F401,F403
