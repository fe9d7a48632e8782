"""ACC-6 benchmark: dedup of up to 1,000,000 Salesforce Accounts, time and peak memory.

Usage::

    python benchmarks/bench_dedup.py                       # 100k, 300k and 1M accounts
    python benchmarks/bench_dedup.py --sizes 1000000 --seed 7

Why it is built this way:

* The accounts look like a real org's where ACC-6 looks: mostly distinct three-word names with
  legal suffixes, websites for most, and 10% planted duplicates of another account that differ
  only by ``www.``/scheme/port/path, legal suffix, case and punctuation, word order, or one typo.
  Because the planted pairs are known, the run also reports how many ACC-6 found (recall), how
  many grouped Accounts share their group with a planted partner (precision), and the same for
  the fuzzy-name *possible* duplicates, which are reported but never keep an Account from
  syncing (the typo copies are found there, not in the groups).
* Each size runs :func:`crm_sync.rules.accounts.dedup_accounts` in a fresh child process that
  reads the staged frame from a pickle, so the peak RSS reported is the dedup's own and not the
  generator's: ``rss_before`` is the child's peak after loading, ``rss_peak`` after deduping.
* Several sizes make the scaling visible: near-linear means ``us_per_account`` stays flat.
  ``cpu_seconds`` (all threads; rapidfuzz uses every core) is reported next to wall time
  because a shared CI machine inflates the latter.

Results are printed as a table and written through ``benchmarks/common.py``'s ``report`` when
that module exists, else to ``benchmarks/results/dedup.json``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
SUFFIXES = ["Inc.", "LLC", "Ltd", "GmbH", "AG", "S.A.", "Corp.", "Co.", "PLC", "B.V.", "SAS", "Pty Ltd", ""]
TLDS = ["com", "com", "com", "co.uk", "de", "io", "fr", "com.au"]


def _pools(seed: int) -> tuple[list[str], list[str]]:
    """Word pools from Faker (seeded): surnames and nouns; combined they give ~10^9 names."""
    from faker import Faker

    fake = Faker("en_US")
    Faker.seed(seed)
    surnames = sorted({fake.last_name() for _ in range(6000)})
    words = sorted({w.capitalize() for w in fake.words(nb=20000, unique=False) if w.isalpha() and len(w) > 3})
    return surnames, words


def generate(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` staged Accounts (catalog columns) and, per row, the index of its planted original (-1)."""
    rng = np.random.default_rng(seed)
    surnames, words = _pools(seed)
    n_dup = n // 10
    n_orig = n - n_dup
    first = np.array(surnames, dtype=object)[rng.integers(0, len(surnames), n_orig)]
    second = np.array(words, dtype=object)[rng.integers(0, len(words), n_orig)]
    third = np.array(words, dtype=object)[rng.integers(0, len(words), n_orig)]
    suffix = np.array(SUFFIXES, dtype=object)[rng.integers(0, len(SUFFIXES), n_orig)]
    names = [f"{a} {b} {c} {s}".strip() for a, b, c, s in zip(first, second, third, suffix, strict=True)]
    tld = np.array(TLDS, dtype=object)[rng.integers(0, len(TLDS), n_orig)]
    has_site = rng.random(n_orig) < 0.8
    sites: list[str | None] = [
        f"https://www.{a.lower()}{b.lower()}{c.lower()}.{t}" if h else None
        for a, b, c, t, h in zip(first, second, third, tld, has_site, strict=True)
    ]
    originals = rng.integers(0, n_orig, n_dup)
    kind = rng.integers(0, 5, n_dup)
    # A shared website can only be planted where the original has one.
    no_site = np.array([sites[o] is None for o in originals])
    kind[no_site & ((kind == 0) | (kind == 4))] = 1
    dup_names: list[str] = []
    dup_sites: list[str | None] = []
    for o, k in zip(originals, kind, strict=True):
        base = f"{first[o]} {second[o]} {third[o]}"
        site = sites[o]
        if k == 0:  # website decoration only; name untouched
            dup_names.append(names[o])
            host = site.split("://www.", 1)[1] if site else None
            dup_sites.append(f"http://{host.upper()}:8080/about?ref=x" if host else None)
        elif k == 1:  # another legal suffix, case and punctuation
            dup_names.append(f"{base.upper()}, {SUFFIXES[int(o) % 12]}")
            dup_sites.append(None)
        elif k == 2:  # word order and "&"
            dup_names.append(f"{third[o]} & {second[o]} {first[o]}")
            dup_sites.append(None)
        elif k == 3:  # one typo in the last word
            word = str(third[o])
            cut = max(1, len(word) - 2)
            dup_names.append(f"{first[o]} {second[o]} {word[:cut]}{word[cut + 1 :]} Inc")
            dup_sites.append(None)
        else:  # same site without www, different name
            dup_names.append(f"{first[o]} {second[o]} Group")
            dup_sites.append(site.replace("https://www.", "") if site else None)
    all_names = names + dup_names
    all_sites = sites + dup_sites
    origin = np.concatenate([np.full(n_orig, -1), originals])
    order = rng.permutation(n)
    ids = [f"001{i:012d}AAA" for i in range(n)]
    base_time = pd.Timestamp("2024-01-01", tz="UTC")
    modified = base_time + pd.to_timedelta(rng.integers(0, 900 * 86400, n), unit="s")
    frame = pd.DataFrame(
        {
            "Id": ids,
            "Name": [all_names[i] for i in order],
            "Website": [all_sites[i] for i in order],
            "LastModifiedDate": modified.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "SystemModstamp": modified.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "IsDeleted": False,
            "_deleted": False,
        }
    )
    # origin in the shuffled frame: position of each row's original, -1 for originals.
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    shuffled_origin = origin[order]
    mapped = np.where(shuffled_origin >= 0, position[np.maximum(shuffled_origin, 0)], -1)
    return frame, mapped


def child(path: str) -> None:
    """Run in a fresh process: load the pickle, dedup, print one JSON line of measurements."""
    from crm_sync.rules.accounts import dedup_accounts

    with Path(path).open("rb") as fh:
        frame, origin = pickle.load(fh)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = dedup_accounts(frame)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    group_of = result.keys["group_id"]
    ids = frame["Id"].to_numpy()
    dup = np.flatnonzero(origin >= 0)
    found = int((group_of.loc[ids[dup]].to_numpy() == group_of.loc[ids[origin[dup]]].to_numpy()).sum())
    planted_groups = pd.Series(np.where(origin >= 0, origin, np.arange(len(origin))))
    sizes = result.groups.groupby("group_id").size()
    expected = planted_groups.map(planted_groups.value_counts())
    expected_grouped = int((expected > 1).sum())
    # Precision: a grouped Account is right when its group holds another member of its planted
    # cluster (the original and its planted copies); possible duplicates are scored per pair.
    cluster = pd.Series(planted_groups.to_numpy(), index=ids)
    members = result.groups[["group_id", "sf_id"]].assign(cluster=lambda g: g["sf_id"].map(cluster))
    shared = members.groupby(["group_id", "cluster"])["sf_id"].transform("size") > 1
    possible = result.possible
    possible_right = int(
        (possible["sf_id"].map(cluster).to_numpy() == possible["similar_id"].map(cluster).to_numpy()).sum()
    )
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu_seconds, 2),
                "rss_before_mib": round(rss_before / 1024, 1),
                "rss_peak_mib": round(rss_peak / 1024, 1),
                "planted_duplicates": len(dup),
                "planted_found": found,
                "grouped_accounts": int(sizes.sum()) if len(sizes) else 0,
                "grouped_correct": int(shared.sum()),
                "possible_duplicates": len(possible),
                "possible_correct": possible_right,
                "expected_grouped_accounts": expected_grouped,
                "largest_group": int(sizes.max()) if len(sizes) else 0,
                **result.stats,
            }
        )
    )


def run(sizes: list[int], seed: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            t0 = time.perf_counter()
            frame, origin = generate(n, seed)
            gen_seconds = time.perf_counter() - t0
            path = Path(tmp) / f"accounts-{n}.pkl"
            with path.open("wb") as fh:
                pickle.dump((frame, origin), fh, protocol=pickle.HIGHEST_PROTOCOL)
            del frame, origin
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            row = {
                "accounts": n,
                **measured,
                "us_per_account": round(measured["seconds"] / n * 1e6, 2),
                "recall": round(measured["planted_found"] / max(1, measured["planted_duplicates"]), 4),
                "precision": round(measured["grouped_correct"] / max(1, measured["grouped_accounts"]), 4),
                "possible_precision": round(
                    measured["possible_correct"] / max(1, measured["possible_duplicates"]), 4
                ),
                "generate_seconds": round(gen_seconds, 1),
            }
            out.append(row)
            print(
                f"  {n:>9,} accounts: {row['seconds']:.1f} s, peak {row['rss_peak_mib']:.0f} MiB", flush=True
            )
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    cols = [
        "accounts",
        "seconds",
        "cpu_seconds",
        "us_per_account",
        "rss_before_mib",
        "rss_peak_mib",
        "groups",
        "grouped_accounts",
        "largest_group",
        "recall",
        "precision",
        "possible_duplicates",
        "possible_precision",
        "fuzzy_comparisons",
        "fuzzy_pairs",
        "ms_keys",
        "ms_fuzzy",
        "ms_components",
        "ms_survivors",
    ]
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(str(r.get(c, "")).rjust(w) for c, w in zip(cols, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000,300000,1000000", help="comma-separated account counts")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows = run(sizes, args.seed)
    meta = {
        "benchmark": "ACC-6 account dedup",
        "seed": args.seed,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "planted": "10% duplicates: site decoration, suffix/case/punctuation, word order, typo, shared site",
    }
    print(_table(rows))
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from common import report  # type: ignore[import-not-found]
    except ImportError:
        RESULTS.mkdir(parents=True, exist_ok=True)
        target = RESULTS / "dedup.json"
        target.write_text(json.dumps({"name": "dedup", "meta": meta, "rows": rows}, indent=2) + "\n")
        print(f"wrote {target}")
    else:
        report("dedup", rows, meta)


if __name__ == "__main__":
    main()
