"""Batched DSSD loss vs MMDetection's per-image SSDHead loss, same run.

    python tools/analysis_tools/benchmark_loss.py [--batch 16] [--backward]

Times are medians of interleaved pairs (one call of each head), so that the
load of a shared machine hits both alike.
"""
import argparse
import json

from mmdssd.benchmark.loss_benchmark import benchmark_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--repeat', type=int, default=7)
    parser.add_argument('--max-gts', type=int, default=10)
    parser.add_argument(
        '--backward',
        action='store_true',
        help='also time the gradient of the loss (as in training)')
    args = parser.parse_args()
    r = benchmark_loss(
        args.batch, args.repeat, max_gts=args.max_gts, backward=args.backward)
    print(f"batch {r['batch']}, {r['boxes_per_image']} boxes per image, "
          f"{'loss + backward' if r['backward'] else 'loss only'}")
    print(f"MMDetection SSDHead.loss_by_feat : {r['mmdet_ssdhead_s']:.4f} s")
    print(f"DSSDHead batched loss_by_feat    : "
          f"{r['dssdhead_batched_s']:.4f} s")
    print(f"speed-up                         : {r['speedup']:.2f}x "
          f"(median of interleaved pairs: {r['speedup_of_pairs']:.2f}x)")
    print(f"max |loss difference|            : {r['max_abs_loss_diff']:.2e}")
    print(json.dumps(r))


if __name__ == '__main__':
    main()
