#!/usr/bin/env python3
"""The inner loop of each decode kernel in the PTX the build writes, for instruction-per-weight
estimates without a GPU: per entry, every basic block with 8 or more dp4a/fma instructions, its
instruction count and the dp4a/fma among them (one 32-element chunk is 8 dp4a, or 32 fma).

    python3 benchmarks/ptx-loops.py [kernels/target/classes/io/jcascade/kernels/cuda/jcascade.ptx] [ENTRY...]
"""
import collections
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "kernels/target/classes/io/jcascade/kernels/cuda/jcascade.ptx"
ptx = open(path).read()
names = sys.argv[2:] or sorted(set(re.findall(r"\.entry (matvec_\w+)\(", ptx)))
for name in names:
    start = ptx.index(".entry " + name + "(")
    end = ptx.find(".entry ", start + 10)
    body = ptx[start:end if end > 0 else len(ptx)]
    parts = re.split(r"\n(\$L__BB\d+_\d+):", body)
    for k in range(1, len(parts), 2):
        ins = [l.strip().split()[0] for l in parts[k + 1].split("\n")
               if l.strip() and not l.strip().startswith(("//", ".", "{", "}"))]
        ops = collections.Counter(i.split(".")[0] for i in ins)
        if ops["dp4a"] + ops["fma"] >= 8:
            print(f"{name:24s} {parts[k]:14s} {len(ins):4d} instructions, dp4a {ops['dp4a']:3d}, fma {ops['fma']:3d}")
