"""Write the model index that ``mim search mmdssd`` reads.

    python tools/misc/update_model_index.py

Measures every real config with our own code (input size, default boxes,
parameters, FLOPs of the network at its input size, random weights, no
download) and writes ``configs/metafiles/{dssd,ssd_r101}/metafile.yml``
with a ``README.md`` beside each (the family's results table), and
``model-index.yml``. Results are the paper's (Fu et al. 2017), labelled
"(paper)": no mmdssd model has been trained on VOC or COCO yet, so there
is no weights URL.

    python tools/misc/update_model_index.py --readme-only

rewrites the READMEs from the metafiles as they are (nothing measured).
"""
import argparse
import os
import os.path as osp

import torch
import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = dict(URL='https://arxiv.org/abs/1701.06659',
             Title='DSSD: Deconvolutional Single Shot Detector')
# config -> (family, training data, the paper's results: dataset -> AP)
MODELS = {
    'dssd_r101_voc.py': ('DSSD', 'VOC07+12', {'VOC2007 (paper)': 78.6}),
    'dssd_r101_voc_stage1.py': ('DSSD', 'VOC07+12',
                                {'VOC2007 (paper)': 78.6}),
    'dssd_r101_voc_stage2.py': ('DSSD', 'VOC07+12', {}),
    'dssd_r101_voc_syncbn.py': ('DSSD', 'VOC07+12', {}),
    'dssd513_r101_voc.py': ('DSSD', 'VOC07+12', {'VOC2007 (paper)': 81.5}),
    'dssd_r101_coco.py': ('DSSD', 'COCO', {'COCO test-dev (paper)': 28.0}),
    'dssd513_r101_coco.py': ('DSSD', 'COCO',
                             {'COCO test-dev (paper)': 33.2}),
    'ssd321_r101_voc.py': ('SSD-ResNet', 'VOC07+12',
                           {'VOC2007 (paper)': 77.1}),
    'ssd513_r101_voc.py': ('SSD-ResNet', 'VOC07+12',
                           {'VOC2007 (paper)': 80.6}),
}
FAMILIES = {'DSSD': 'dssd', 'SSD-ResNet': 'ssd_r101'}
ABOUT = {
    'DSSD': 'DSSD (Fu et al. 2017): SSD on ResNet-101 with the '
    'deconvolution module (the top-down path, fused by an element-wise '
    'product) and prediction module (c) on every level.',
    'SSD-ResNet': 'The paper\'s SSD baselines: the same ResNet-101 trunk, '
    'extra layers and prediction module (c), without the deconvolution '
    'module.',
}


def readme(family: str, models: list) -> str:
    """The family's README: what it is and one row per config, from the
    metafile's entries."""
    lines = [
        f'# {family}', '', ABOUT[family], '',
        'Measured by mmdssd (`tools/misc/update_model_index.py`, random '
        'weights): input size, default boxes, parameters, FLOPs. The '
        'results are **the paper\'s**; no mmdssd model has been trained '
        'on VOC or COCO yet (what has been trained, on the embedded '
        'synthetic set and a real face-mask set, is in '
        '[the results](../../../docs/en/model_zoo.md)).', '',
        '| config | training data | input | boxes | params (M) '
        '| GFLOPs | paper result |', '|---|---|---|---|---|---|---|'
    ]
    for m in models:
        meta = m['Metadata']
        results = '; '.join(
            f"{r['Dataset'].replace(' (paper)', '')}: "
            f"{', '.join(f'{k} {v}' for k, v in r['Metrics'].items())}"
            for r in m.get('Results') or []) or '-'
        lines.append(
            f"| [{m['Name']}](../../{osp.basename(m['Config'])}) "
            f"| {meta['Training Data']} | {meta['Input Size']} "
            f"| {meta['Default Boxes']} | {meta['Parameters (M)']} "
            f"| {meta['FLOPs (G)']} | {results} |")
    lines += ['', 'Citation: see the [front page](../../../README.md).', '']
    return '\n'.join(lines)


def write_readmes() -> None:
    """README.md beside each family's metafile.yml, from the metafile."""
    for family, folder in FAMILIES.items():
        base = osp.join(ROOT, 'configs', 'metafiles', folder)
        with open(osp.join(base, 'metafile.yml')) as f:
            models = yaml.safe_load(f)['Models']
        with open(osp.join(base, 'README.md'), 'w') as f:
            f.write(readme(family, models))


def measure(name: str) -> dict:
    """Input size, boxes, params (M) and GFLOPs of a config's network."""
    from mmdet.registry import MODELS as REG
    from mmengine.analysis import get_model_complexity_info
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    cfg.model.backbone.init_cfg = None
    model = REG.build(cfg.model).eval()
    size = cfg.model.bbox_head.anchor_generator.input_size
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, size, size))
        priors = model.bbox_head.prior_generator.grid_priors(
            [f.shape[-2:] for f in feats], device='cpu')
        info = get_model_complexity_info(
            model, inputs=torch.zeros(1, 3, size, size), show_table=False,
            show_arch=False)
    return dict(size=size, boxes=sum(len(p) for p in priors),
                params=round(info['params'] / 1e6, 1),
                flops=round(info['flops'] / 1e9, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--readme-only', action='store_true',
                        help='rewrite the READMEs from the metafiles')
    if parser.parse_args().readme_only:
        return write_readmes()
    import mmdssd  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    families = {f: [] for f in FAMILIES}
    for name, (family, data, results) in MODELS.items():
        m = measure(name)
        print(name, m, flush=True)
        families[family].append({
            'Name': osp.splitext(name)[0],
            'In Collection': family,
            'Config': f'configs/{name}',
            'Metadata': {
                'Training Data': data,
                'Input Size': m['size'],
                'Default Boxes': m['boxes'],
                'Parameters (M)': m['params'],
                'FLOPs (G)': m['flops'],
            },
            'Results': [{
                'Task': 'Object Detection',
                'Dataset': dataset,
                'Metrics': {'box AP' if 'COCO' in dataset else 'mAP': ap},
            } for dataset, ap in results.items()] or None,
        })
    index = []
    for family, folder in FAMILIES.items():
        path = osp.join('configs', 'metafiles', folder, 'metafile.yml')
        os.makedirs(osp.join(ROOT, osp.dirname(path)), exist_ok=True)
        models = [{k: v for k, v in m.items() if v is not None}
                  for m in families[family]]
        doc = {
            'Collections': [{
                'Name': family,
                'Metadata': {
                    'Architecture': ['ResNet-101', 'SSD'] + (
                        ['Deconvolution Module'] if family == 'DSSD' else
                        []) + ['Prediction Module'],
                    'Training Techniques': ['SGD with Momentum',
                                            'Weight Decay'],
                },
                'Paper': PAPER,
                'README': osp.join(osp.dirname(path), 'README.md'),
            }],
            'Models': models,
        }
        with open(osp.join(ROOT, path), 'w') as f:
            f.write('# Written by tools/misc/update_model_index.py: '
                    'measured by mmdssd; results are the paper\'s.\n')
            yaml.safe_dump(doc, f, sort_keys=False)
        index.append(path)
    with open(osp.join(ROOT, 'model-index.yml'), 'w') as f:
        yaml.safe_dump({'Import': index}, f, sort_keys=False)
    write_readmes()
    print('wrote model-index.yml and', ', '.join(index), 'with READMEs')


if __name__ == '__main__':
    main()
