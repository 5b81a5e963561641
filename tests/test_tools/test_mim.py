"""mim train/test/run find mmdssd's configs and tools after the install."""
import os.path as osp
import re

from ..conftest import MIM, free_port, run


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
