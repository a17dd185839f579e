"""Generate the Shapes dataset (see mmseg_maskformer/datasets/shapes.py).

    python tools/make_shapes_dataset.py --out data/shapes

Does nothing when --out already holds the same dataset, so it is safe to run before every demo.
"""
import argparse
import sys
import time
from pathlib import Path

# Run from a checkout without `pip install -e .`: this script belongs to the tree it sits in.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_maskformer.datasets.shapes import generate_shapes_dataset  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/shapes', help='dataset root (default: %(default)s)')
    parser.add_argument('--num-train', type=int, default=600, help='default: %(default)s')
    parser.add_argument('--num-val', type=int, default=100, help='default: %(default)s')
    parser.add_argument('--size', type=int, default=128, help='image side in pixels (default: '
                        '%(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='default: %(default)s')
    parser.add_argument('--force', action='store_true', help='regenerate even if up to date')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    generated = generate_shapes_dataset(args.out, num_train=args.num_train,
                                        num_val=args.num_val, size=args.size, seed=args.seed,
                                        force=args.force)
    elapsed = time.perf_counter() - start
    what = (f'{args.num_train} train + {args.num_val} val images of {args.size}x{args.size}, '
            f'seed {args.seed}')
    if generated:
        print(f'Wrote {what} to {Path(args.out).resolve()} in {elapsed:.1f} s')
    else:
        print(f'{Path(args.out).resolve()} already holds {what}; nothing to do')


if __name__ == '__main__':
    main()
