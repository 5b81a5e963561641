"""mim train/test/run find mmdssd's configs and tools after the install."""
import os.path as osp
import re
import sys

from ..conftest import CONFIGS, MIM, TOOLS, free_port, run


def test_package_ships_configs_and_tools():
    """tools/install.sh installs mim and mmdssd with its .mim folder."""
    from mim.utils import get_installed_path
    assert osp.isfile(MIM)
    installed = get_installed_path('mmdssd')
    for rel in ('configs/dssd_r101_voc.py', 'tools/train.py', 'tools/test.py',
                'configs/synthetic/dssd_tiny_synthetic.py',
                'tools/analysis_tools/benchmark.py'):
        assert osp.isfile(osp.join(installed, '.mim', rel)), rel


def test_mim_train_then_test_by_basename(data_cwd, tmp_path):
    work_dir = tmp_path / 'mim'
    out = run([
        MIM, 'train', 'mmdssd', 'dssd_tiny_synthetic.py', '--work-dir',
        work_dir, '--cfg-options', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=10', 'default_hooks.checkpoint.interval=1'
    ], cwd=data_cwd)
    assert 'Training finished successfully' in out
    ckpt = work_dir / 'epoch_1.pth'
    assert ckpt.is_file()
    out = run([
        MIM, 'test', 'mmdssd', 'dssd_tiny_synthetic.py', '--checkpoint', ckpt,
        '--work-dir', tmp_path / 'mim_test'
    ], cwd=data_cwd)
    assert re.search(r'pascal_voc/mAP: [0-9.]+', out), out[-2000:]


def test_mim_train_launcher_pytorch_two_processes(data_cwd, tmp_path):
    work_dir = tmp_path / 'mim_ddp'
    out = run([
        MIM, 'train', 'mmdssd', 'dssd_tiny_synthetic.py', '--launcher',
        'pytorch', '--gpus', '2', '--port', free_port(), '--work-dir',
        work_dir, '--cfg-options', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=10', 'default_hooks.checkpoint.interval=1'
    ], cwd=data_cwd, env=dict(CUDA_VISIBLE_DEVICES=''))  # CPU path anywhere
    assert 'torch.distributed.launch' in out
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'Distributed training: True' in log
    assert (work_dir / 'epoch_1.pth').is_file()


def test_mim_search_lists_every_real_config(tmp_path):
    """The model index (model-index.yml + configs/metafiles/*/metafile.yml,
    installed into mmdssd/.mim) lists every real config with its measured
    size, boxes, parameters and FLOPs; paper results are labelled so."""
    import glob
    out = run([MIM, 'search', 'mmdssd'], cwd=tmp_path)
    real = sorted(
        osp.splitext(osp.basename(p))[0]
        for p in glob.glob(osp.join(CONFIGS, '*.py')))
    listed = sorted(re.findall(r'config id: (\S+)', out))
    assert listed == real
    blocks = dict(re.findall(r'config id: (\S+)\n(.*?)(?=\n-{20,}|\Z)', out,
                             re.S))
    dssd = blocks['dssd_r101_voc']
    assert re.search(r'default_boxes\s+17080', dssd)
    assert re.search(r'input_size\s+320', dssd)
    assert re.search(r'parameters\(M\)\s+165\.2', dssd)
    assert re.search(r'flops\(G\)\s+54\.2', dssd)
    assert re.search(r'voc2007 \(paper\)/map\s+78\.6', dssd)
    assert not re.search(r'^weight ', dssd, re.M)  # no invented URL
    assert re.search(r'default_boxes\s+43688', blocks['dssd513_r101_coco'])


def test_model_index_matches_the_configs():
    """The metafiles hold what our code measures now (regenerate with
    tools/misc/update_model_index.py when a config changes)."""
    import yaml
    sys.path.insert(0, osp.join(TOOLS, 'misc'))
    try:
        from update_model_index import FAMILIES, measure, readme
    finally:
        sys.path.pop(0)
    with open(osp.join(CONFIGS, 'metafiles', 'dssd', 'metafile.yml')) as f:
        models = {m['Name']: m for m in yaml.safe_load(f)['Models']}
    meta = models['dssd_r101_voc']['Metadata']
    m = measure('dssd_r101_voc.py')
    assert (meta['Input Size'], meta['Default Boxes'], meta['Parameters (M)'],
            meta['FLOPs (G)']) == (m['size'], m['boxes'], m['params'],
                                   m['flops'])
    # each family's README is its metafile's table, and the metafile says so
    for family, folder in FAMILIES.items():
        base = osp.join(CONFIGS, 'metafiles', folder)
        with open(osp.join(base, 'metafile.yml')) as f:
            doc = yaml.safe_load(f)
        with open(osp.join(base, 'README.md')) as f:
            assert f.read() == readme(family, doc['Models']), folder
        assert doc['Collections'][0]['README'] == osp.join(
            'configs', 'metafiles', folder, 'README.md')
