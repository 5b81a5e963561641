"""Plot VOC mAP against wall time for runs of the main job.

    python tools/analysis_tools/plot_main_job.py \
        work_dirs/synthetic_demo/summary.json:new \
        --point "old job:578:0.326" --out docs/main_job_map_vs_time.png

Each ``SUMMARY:LABEL`` is a ``summary.json`` written by
tools/run_synthetic.py (its ``timeline`` holds every validation's wall time
and metrics); each ``--point LABEL:SECONDS:MAP`` is a single recorded
result (e.g. from an earlier README) drawn as a marker.
"""
import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('runs', nargs='*', help='SUMMARY.json:LABEL')
    parser.add_argument('--point', action='append', default=[],
                        help='LABEL:SECONDS:MAP')
    parser.add_argument('--out', default='main_job_map_vs_time.png')
    args = parser.parse_args()
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 4))
    for item in args.runs:
        path, _, label = item.rpartition(':')
        with open(path) as f:
            summary = json.load(f)
        points = summary['timeline']
        ax.plot([p['seconds'] for p in points],
                [p['pascal_voc/mAP'] for p in points], 'o-',
                label=f'{label} ({summary["iterations"]} iterations)')
    for item in args.point:
        label, seconds, value = item.rsplit(':', 2)
        ax.plot([float(seconds)], [float(value)], 'k*', markersize=12,
                label=label)
    ax.axvline(600, color='grey', linestyle='--', linewidth=1)
    ax.text(600, 0.02, ' 10 min', color='grey')
    ax.set_xlabel('wall time since the job started (s)')
    ax.set_ylabel('test VOC mAP@0.5 (11-point)')
    ax.set_ylim(0, 1)
    # outside the axes: with many runs an inside legend hides their curves
    ax.legend(loc='upper left', bbox_to_anchor=(1.02, 1), fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(args.out)


if __name__ == '__main__':
    main()
