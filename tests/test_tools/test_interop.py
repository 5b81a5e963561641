"""mmdssd next to MMDetection's own tools and APIs."""
import os.path as osp
import re

import mmdet
import torch

from ..conftest import (CONFIGS, MIM, PYTHON, TINY, TOOLS, run,
                        voc0712_synthetic_options)

MMDET_TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')


def test_real_dssd321_config_through_mim(data_cwd, tmp_path):
    """`mim train mmdssd configs/dssd_r101_voc.py` end to end (ResNet-101,
    320 input, DM + PM(c)) on the synthetic stand-in for VOC07+12."""
    work_dir = tmp_path / 'dssd321'
    out = run([
        MIM, 'train', 'mmdssd',
        osp.join(CONFIGS, 'dssd_r101_voc.py'), '--work-dir', work_dir,
        '--cfg-options'
    ] + voc0712_synthetic_options(data_cwd), cwd=data_cwd)
    assert 'Training finished successfully' in out
    log = next(work_dir.glob('*/*.log')).read_text()
    assert re.search(r'pascal_voc/mAP: [0-9.]+', log)
    ckpt = torch.load(work_dir / 'epoch_1.pth', map_location='cpu',
                      weights_only=True)
    assert ckpt['state_dict']['bbox_head.cls_convs.0.weight'].shape[:2] == (
        8 * 6, 1024)


def test_stock_mmdet_ssd300_trains_and_evaluates_with_our_tools(
        data_cwd, tmp_path):
    work_dir = tmp_path / 'ssd300'
    run([
        PYTHON, osp.join(TOOLS, 'train.py'),
        'mmdet::pascal_voc/ssd300_voc0712.py', '--work-dir', work_dir,
        '--cfg-options'
    ] + voc0712_synthetic_options(data_cwd) +
        ['train_dataloader.dataset.times=1'], cwd=data_cwd)
    log = next(work_dir.glob('*/*.log')).read_text()
    assert re.search(r'pascal_voc/mAP: [0-9.]+', log)  # validation ran
    out = run([
        PYTHON, osp.join(TOOLS, 'test.py'),
        'mmdet::pascal_voc/ssd300_voc0712.py', work_dir / 'epoch_1.pth',
        '--work-dir', tmp_path / 'ssd300_test', '--cfg-options'
    ] + voc0712_synthetic_options(data_cwd), cwd=data_cwd)
    assert re.search(r'pascal_voc/mAP: [0-9.]+', out)


def test_mim_train_mmdet_with_an_mmdssd_config(data_cwd, tmp_path):
    """MMDetection's own train script: custom_imports brings mmdssd in."""
    work_dir = tmp_path / 'via_mmdet'
    out = run([
        MIM, 'train', 'mmdet', TINY, '--work-dir', work_dir, '--cfg-options',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=10'
    ], cwd=data_cwd)
    assert 'Training finished successfully' in out
    assert osp.join(MMDET_TOOLS, 'train.py') in out
    assert (work_dir / 'epoch_1.pth').is_file()


def test_mmdet_inference_apis_on_a_trained_checkpoint(trained_tiny, data_cwd,
                                                      tmp_path):
    from mmdet.apis import DetInferencer, inference_detector, init_detector
    ckpt = str(trained_tiny / 'epoch_2.pth')
    image = str(
        data_cwd / 'data/synthetic/VOCdevkit/VOC2007/JPEGImages/000017.jpg')
    model = init_detector(TINY, ckpt, device='cpu')
    result = inference_detector(model, image)
    assert result.pred_instances.bboxes.shape[-1] == 4
    assert len(result.pred_instances) > 0
    inferencer = DetInferencer(model=TINY, weights=ckpt, device='cpu')
    out = inferencer(image, out_dir=str(tmp_path), no_save_pred=False)
    boxes = out['predictions'][0]['bboxes']
    assert len(boxes) > 0 and len(boxes[0]) == 4
    assert list((tmp_path / 'vis').glob('*.jpg'))


def test_mmdet_get_flops_and_browse_dataset(data_cwd, tmp_path):
    out = run([
        PYTHON, osp.join(MMDET_TOOLS, 'analysis_tools', 'get_flops.py'), TINY,
        '--num-images', '2'
    ], cwd=data_cwd)
    assert re.search(r'Flops: [0-9.]+G', out), out[-2000:]
    assert re.search(r'Params: [0-9.]+M', out)
    run([
        PYTHON, osp.join(MMDET_TOOLS, 'analysis_tools', 'browse_dataset.py'),
        TINY, '--output-dir', tmp_path / 'browse', '--not-show'
    ], cwd=data_cwd, timeout=300)
    assert len(list((tmp_path / 'browse').glob('*.jpg'))) == 16


def test_stage1_loads_ssd_and_freezes_backbone_and_extras(data_cwd, tmp_path):
    """Stage 1 of the paper's recipe: SSD checkpoint -> DSSD, frozen trunk."""
    ssd_dir = tmp_path / 'ssd'
    run([
        PYTHON, osp.join(TOOLS, 'train.py'),
        osp.join(CONFIGS, 'synthetic', 'ssd_tiny_synthetic.py'), '--work-dir',
        ssd_dir, '--cfg-options', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=10'
    ], cwd=data_cwd)
    ssd = torch.load(ssd_dir / 'epoch_1.pth', map_location='cpu',
                     weights_only=True)['state_dict']
    stage1 = tmp_path / 'stage1'
    run([
        PYTHON, osp.join(TOOLS, 'train.py'),
        osp.join(CONFIGS, 'synthetic', 'dssd_tiny_stage1_synthetic.py'),
        '--work-dir', stage1, '--cfg-options',
        f'load_from={ssd_dir / "epoch_1.pth"}', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=10'
    ], cwd=data_cwd)
    dssd = torch.load(stage1 / 'epoch_1.pth',
                      map_location='cpu',
                      weights_only=True)['state_dict']
    trunk = [k for k in ssd if k.startswith(('backbone.', 'neck.extra'))]
    assert len(trunk) > 50
    for key in trunk:  # loaded from SSD and unchanged by the step
        assert torch.equal(ssd[key], dssd[key]), key
    log = next(stage1.glob('*/*.log')).read_text()
    assert 'Load checkpoint from' in log

    # one optimiser step of the same config in-process: the new modules move
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import load_checkpoint

    from mmdet.registry import MODELS
    from ..test_configs.test_configs import tiny_batch
    cfg = Config.fromfile(
        osp.join(CONFIGS, 'synthetic', 'dssd_tiny_stage1_synthetic.py'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    load_checkpoint(model, str(ssd_dir / 'epoch_1.pth'), strict=False)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    inputs, samples = tiny_batch(num_images=2, empty_first=False)
    data = model.data_preprocessor(
        dict(inputs=list(inputs), data_samples=samples), True)
    optim.update_params(
        sum(model.loss(data['inputs'], data['data_samples']).values()))
    after = model.state_dict()
    for key in trunk:  # weights and BN statistics both frozen
        assert torch.equal(before[key], after[key]), key
    for prefix in ('neck.deconv_modules', 'bbox_head.pred_modules',
                   'bbox_head.cls_convs'):
        moved = [k for k in after if k.startswith(prefix)
                 and k.endswith('weight')
                 and not torch.equal(before[k], after[k])]
        assert moved, prefix


def test_everyday_mmdet_tools_through_mim_run(trained_tiny, data_cwd,
                                              tmp_path):
    """MMDetection's own analyze_logs and confusion_matrix work on our
    work dirs and configs through `mim run mmdet ...` (README "Tools")."""
    scalars = next(trained_tiny.glob('*/vis_data/scalars.json'))
    run([MIM, 'run', 'mmdet', 'analyze_logs', 'plot_curve', scalars,
         '--keys', 'loss', '--out', tmp_path / 'loss.png'], cwd=data_cwd)
    assert (tmp_path / 'loss.png').stat().st_size > 1000
    dets = tmp_path / 'dets.pkl'
    run([PYTHON, osp.join(TOOLS, 'test.py'), TINY,
         trained_tiny / 'epoch_2.pth', '--work-dir', tmp_path / 'test',
         '--out', dets], cwd=data_cwd)
    run([MIM, 'run', 'mmdet', 'confusion_matrix', TINY, dets,
         tmp_path / 'cm'], cwd=data_cwd)
    assert (tmp_path / 'cm' / 'confusion_matrix.png').stat().st_size > 1000


def test_det_inferencer_on_an_image_folder(trained_tiny, data_cwd, tmp_path):
    from mmdet.apis import DetInferencer
    folder = tmp_path / 'images'
    folder.mkdir()
    src = data_cwd / 'data/synthetic/VOCdevkit/VOC2007/JPEGImages'
    for name in sorted(p.name for p in src.glob('*.jpg'))[:3]:
        (folder / name).write_bytes((src / name).read_bytes())
    inferencer = DetInferencer(model=TINY, weights=str(
        trained_tiny / 'epoch_2.pth'), device='cpu')
    out = inferencer(str(folder), out_dir=str(tmp_path / 'out'),
                     pred_score_thr=0.0)
    assert len(out['predictions']) == 3
    assert len(list((tmp_path / 'out' / 'vis').glob('*.jpg'))) == 3


def test_tensorboard_backend_is_one_option(data_cwd, tmp_path):
    """The README's opt-in: one --cfg-options line switches the scalars
    to TensorBoard (MMEngine's DictAction cannot append a dict to a list,
    so it replaces the local JSON backend)."""
    work = tmp_path / 'tb'
    run([PYTHON, osp.join(TOOLS, 'train.py'), TINY, '--work-dir', work,
         '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
         'visualizer.vis_backends.0.type=TensorboardVisBackend'],
        cwd=data_cwd)
    events = list(work.glob('*/vis_data/events.out.tfevents.*'))
    assert events and events[0].stat().st_size > 0
