from mmengine.model import is_model_wrapper


def unwrapped_model(runner):
    """The runner's model without its (DDP) wrapper."""
    model = runner.model
    return model.module if is_model_wrapper(model) else model
