"""Paired comparison of a body.sh run with TRACK_BEFORE (columns: round,
empty, before, after; rows with NA left out): per program the median and
range, then per pair of programs the median over rounds of their
difference with a 95% percentile-bootstrap interval (2,000 resamples,
fixed seed).

Usage: python3 benchmarks/collector-cost/body_pairs.py FILE.csv...
"""
import csv, sys, random, statistics as st
for f in sys.argv[1:]:
    rows=[r for r in csv.reader(l for l in open(f) if not l.startswith('#'))][1:]
    rows=[[float(x) if x!='NA' else None for x in r] for r in rows]
    rows=[r for r in rows if None not in r]
    e=[r[1] for r in rows]; b=[r[2] for r in rows]; a=[r[3] for r in rows]
    def ci(d):
        rnd=random.Random(1); ms=sorted(st.median(rnd.choices(d,k=len(d))) for _ in range(2000))
        return ms[50], ms[1949]
    d=[x-y for x,y in zip(a,b)]
    print(f, len(rows), "rounds")
    for n,v in (("empty",e),("before",b),("after",a)):
        print(f"  {n}: median {st.median(v):.1f} min-max {min(v):.1f}-{max(v):.1f}")
    for n,v in (("before-empty",[x-y for x,y in zip(b,e)]),("after-empty",[x-y for x,y in zip(a,e)]),("after-before",d)):
        lo,hi=ci(v); print(f"  {n}: paired median {st.median(v):+.1f} (95% CI {lo:+.1f}..{hi:+.1f})")
    print(f"  after/before ratio of medians: {st.median(a)/st.median(b):.3f}; (after-empty)/(before-empty): {st.median([x-y for x,y in zip(a,e)])/st.median([x-y for x,y in zip(b,e)]):.2f}")
