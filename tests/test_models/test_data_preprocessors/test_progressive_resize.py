import uuid

import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures import DetDataSample
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData

from mmdssd.models.data_preprocessors import ProgressiveResize


def _samples(n=2, side=256):
    samples = []
    for _ in range(n):
        s = DetDataSample(
            metainfo=dict(img_shape=(side, side), pad_shape=(side, side),
                          batch_input_shape=(side, side)))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[16., 32., 144., 96.]]),
            labels=torch.tensor([1]))
        s.ignored_instances = InstanceData(
            bboxes=torch.tensor([[0., 0., 64., 64.]]),
            labels=torch.tensor([0]))
        samples.append(s)
    return samples


@pytest.fixture
def hub():
    """A message hub of its own, as a training loop keeps one."""
    hub = MessageHub.get_instance(f"test_progressive_resize_{uuid.uuid4()}")
    yield hub
    for key in ('iter', 'max_iters'):
        hub.pop_info(key, None)


@pytest.mark.parametrize('it,side', [(0, 192), (49, 192), (50, 224),
                                     (74, 224), (75, 256), (99, 256)])
def test_size_follows_schedule_with_boxes(hub, it, side):
    aug = ProgressiveResize(phases=((0.5, 192), (0.75, 224)))
    hub.update_info('max_iters', 100)
    hub.update_info('iter', it)
    inputs, samples = aug(torch.rand(2, 3, 256, 256), _samples())
    assert inputs.shape == (2, 3, side, side)
    scale = side / 256
    for s in samples:
        assert s.img_shape == (side, side)
        assert s.batch_input_shape == (side, side)
        torch.testing.assert_close(
            s.gt_instances.bboxes,
            torch.tensor([[16., 32., 144., 96.]]) * scale)
        torch.testing.assert_close(s.ignored_instances.bboxes,
                                   torch.tensor([[0., 0., 64., 64.]]) * scale)


def test_keeps_aspect_ratio_to_size_divisor(hub):
    aug = ProgressiveResize(phases=((0.5, 192), ))
    hub.update_info('max_iters', 10)
    hub.update_info('iter', 0)
    inputs, _ = aug(torch.rand(1, 3, 256, 320), _samples(1))
    # the longer side becomes 192, the shorter 256 * 0.6 = 153.6 -> 160
    assert inputs.shape[-2:] == (160, 192)


def test_found_on_a_model_with_its_boundaries():
    import types
    pre = DetDataPreprocessor(batch_augments=[
        dict(type='ProgressiveResize', phases=((0.5, 192), (0.75, 224)))
    ])
    model = types.SimpleNamespace(data_preprocessor=pre)
    aug = ProgressiveResize.of(types.SimpleNamespace(module=model))
    assert aug is pre.batch_augments[0]
    assert aug.boundaries == [0.5, 0.75, 1.0]
    assert ProgressiveResize.of(
        types.SimpleNamespace(data_preprocessor=DetDataPreprocessor())) is None


def test_outside_training_leaves_the_batch(hub):
    aug = ProgressiveResize(phases=((0.5, 192), ))
    hub.pop_info('max_iters', None)
    x = torch.rand(2, 3, 256, 256)
    inputs, samples = aug(x, _samples())
    assert inputs is x
    assert samples[0].img_shape == (256, 256)


def test_only_in_training_mode(hub):
    pre = DetDataPreprocessor(batch_augments=[
        dict(type='ProgressiveResize', phases=((0.5, 128), ))
    ])
    hub.update_info('max_iters', 10)
    hub.update_info('iter', 0)
    data = dict(inputs=[torch.randint(0, 255, (3, 256, 256))],
                data_samples=_samples(1))
    assert pre(data, training=True)['inputs'].shape[-2:] == (128, 128)
    data = dict(inputs=[torch.randint(0, 255, (3, 256, 256))],
                data_samples=_samples(1))
    assert pre(data, training=False)['inputs'].shape[-2:] == (256, 256)


@pytest.mark.parametrize('phases,field', [
    (((0.5, 190), ), 'size=190'),
    (((0.5, 192), (0.4, 224)), 'until=0.4'),
    (((1.0, 192), ), 'until=1.0'),
    (((0.5, ), ), 'phases[0]'),
])
def test_bad_phases_name_the_value(phases, field):
    with pytest.raises(ValueError, match=field.replace('[', r'\[').replace(
            ']', r'\]')):
        ProgressiveResize(phases=phases)
