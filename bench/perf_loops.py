#!/usr/bin/env python3
"""Groups the samples of one JIT-compiled linattn kernel by innermost loop.

The kernel is one large function, so `perf report` gives a single line for
it. This reads `perf annotate --stdio` output, finds loops as backward
branches, attributes each instruction's samples to the innermost loop
around it and names each loop by its instruction mix (register-blocked
matmul, exp polynomial, 8x8 transpose, copy, ...).

  LINATTN_PERF_JITDUMP=1 perf record -k 1 -e cpu-clock -F 4000 -o k.data -- \\
      bench/.work/build/cpu_bench --impls=linattn --shapes=1x8x4096x128 ...
  perf inject --jit -i k.data -o k.jit.data
  perf annotate -i k.jit.data --stdio -s linattn_head > k.annot
  python3 bench/perf_loops.py k.annot [--loops N]
"""
import argparse
import collections
import re


def parse(path):
    rows = []
    pat = re.compile(r'\s*([\d.]+)\s*:\s+([0-9a-f]+):\s+(\S+)\s*(.*)')
    with open(path) as f:
        for line in f:
            m = pat.match(line)
            if m:
                rows.append((float(m.group(1)), int(m.group(2), 16),
                             m.group(3), m.group(4)))
    return rows


def innermost_loops(rows):
    """Maps each instruction index to its innermost (start, end) loop."""
    index = {a: i for i, (_, a, _, _) in enumerate(rows)}
    loops = []
    for i, (_, a, op, args) in enumerate(rows):
        m = re.match(r'([0-9a-f]+)\s', args + ' ')
        if op.startswith('j') and m:
            target = int(m.group(1), 16)
            if target <= a and target in index:
                loops.append((index[target], i))
    owner = [None] * len(rows)
    for s, e in sorted(loops, key=lambda x: x[1] - x[0], reverse=True):
        for i in range(s, e + 1):
            owner[i] = (s, e)
    return owner


def mix(rows):
    c = collections.Counter()
    for _, _, op, args in rows:
        if 'vfmadd' in op or 'vfnmadd' in op:
            c['fma'] += 1
        elif 'vbroadcast' in op:
            c['bcast'] += 1
        elif 'vround' in op:
            c['round'] += 1
        elif op.startswith(('vshuf', 'vunpck', 'vperm', 'vinsert',
                            'vextract', 'vblend')):
            c['shuffle'] += 1
        elif op.startswith(('vmax', 'vmin')):
            c['minmax'] += 1
        elif op.startswith(('vadd', 'vsub')):
            c['addsub'] += 1
        elif op.startswith('vmul'):
            c['mul'] += 1
        elif op.startswith(('vmov', 'mov')) and args.rstrip().endswith(')'):
            c['store'] += 1
    return c


def category(c, n):
    if n > 1000:
        return 'outside inner loops'
    if c['round']:
        return 'exp loops (factor = exp(...), multiply, store)'
    if c['fma'] >= 16 and c['bcast'] >= 8:
        return 'register-blocked matmuls'
    if c['shuffle'] >= 24:
        return '8x8 transposes'
    if c['shuffle']:
        return 'copies with strided (transposed) stores'
    if c['minmax'] and c['addsub']:
        return 'gate clamp + cumulative sum'
    if c['mul'] >= 8:
        return 'rescale loops'
    if c['store']:
        return 'chunk loads/stores (q, k, v, o, state)'
    return 'other'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('annotate_output')
    ap.add_argument('--loops', type=int, default=15,
                    help='hot loops to list (default 15)')
    a = ap.parse_args()
    rows = parse(a.annotate_output)
    owner = innermost_loops(rows)
    per_loop = collections.defaultdict(float)
    for i, r in enumerate(rows):
        per_loop[owner[i]] += r[0]
    per_cat = collections.defaultdict(float)
    listing = []
    for k, share in per_loop.items():
        if k is None:
            per_cat['outside inner loops'] += share
            continue
        s, e = k
        c = mix(rows[s:e + 1])
        cat = category(c, e - s + 1)
        per_cat[cat] += share
        listing.append((share, rows[s][1], rows[e][1], e - s + 1, cat))
    print('share  phase')
    for cat, share in sorted(per_cat.items(), key=lambda kv: -kv[1]):
        print(f'{share:5.1f}%  {cat}')
    print('\nshare  loop (address range, instructions)  phase')
    for share, lo, hi, n, cat in sorted(listing, reverse=True)[:a.loops]:
        print(f'{share:5.1f}%  {lo:x}-{hi:x} ({n})  {cat}')


if __name__ == '__main__':
    main()
