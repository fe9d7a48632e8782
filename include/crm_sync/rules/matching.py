"""ACC-3: one-to-one matching of Accounts to companies decided for all of them together.

Taking candidates greedily (each Account its best company, first come first served) strands
an Account whose best company another Account took: it would create a duplicate company
although its second-best candidate was free. Here the candidates of a step form a bipartite
graph; each connected piece is solved as an assignment problem (the pairs with the largest
total score, :func:`scipy.optimize.linear_sum_assignment`), so an Account falls back to its
next-best company, and ties keep the caller's order of preference (a tie-break weight far below
one score point). Pieces with a single candidate pair, by far the most common, take no solver.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: Above this many Accounts or companies in one piece, its dense score matrix would be large:
#: it is matched greedily in preference order instead (never met by real ACC-3 candidates).
MAX_DENSE_SIDE = 2_000


def best_matching(candidates: pd.DataFrame, score: str) -> pd.DataFrame:
    """The one-to-one pairs (``sf_id``, ``hs_id``) with the best total ``score``.

    ``candidates`` lists every possible pair once or more, ordered by preference (best first);
    a higher ``score`` is better (e.g. the number of shared contacts). The result keeps that
    order. Deterministic: the same candidates give the same pairs.
    """
    cols = ["sf_id", "hs_id"]
    if candidates.empty:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    cand = candidates.drop_duplicates(cols).reset_index(drop=True)
    sf_codes, _ = pd.factorize(cand["sf_id"])
    hs_codes, hs_ids = pd.factorize(cand["hs_id"])
    n_sf = int(sf_codes.max()) + 1
    n = n_sf + len(hs_ids)
    graph = coo_matrix((np.ones(len(cand)), (sf_codes, n_sf + hs_codes)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    piece = labels[sf_codes]
    sizes = np.bincount(piece)
    chosen = np.zeros(len(cand), dtype=bool)
    chosen[sizes[piece] == 1] = True
    weights = pd.to_numeric(cand[score], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    preference = 1.0 - np.arange(len(cand)) / len(cand)  # in (0, 1], best first
    for p in np.flatnonzero(sizes > 1):
        rows = np.flatnonzero(piece == p)
        chosen[_solve(rows, sf_codes[rows], hs_codes[rows], weights[rows], preference[rows])] = True
    return cand.loc[chosen, cols].reset_index(drop=True)


def _solve(
    rows: np.ndarray, sf: np.ndarray, hs: np.ndarray, weight: np.ndarray, preference: np.ndarray
) -> np.ndarray:
    """Rows (positions in the candidates) of the best assignment within one piece."""
    r_codes, r = np.unique(sf, return_inverse=True)
    c_codes, c = np.unique(hs, return_inverse=True)
    if max(len(r_codes), len(c_codes)) > MAX_DENSE_SIDE:
        return _greedy(rows, sf, hs)
    tie = preference / (min(len(r_codes), len(c_codes)) + 1)  # sums to < 1 over any matching
    matrix = np.zeros((len(r_codes), len(c_codes)))
    owner = np.full((len(r_codes), len(c_codes)), -1, dtype=np.int64)
    for i, (ri, ci) in enumerate(zip(r, c, strict=True)):
        value = weight[i] + tie[i] + 1.0  # +1: any candidate pair beats no pair
        if value > matrix[ri, ci]:
            matrix[ri, ci] = value
            owner[ri, ci] = rows[i]
    row_ind, col_ind = linear_sum_assignment(matrix, maximize=True)
    picked = owner[row_ind, col_ind]
    return np.asarray(picked[picked >= 0], dtype=np.int64)


def _greedy(rows: np.ndarray, sf: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """Preference order, each side once: the fallback for oversized pieces."""
    taken_sf: set[int] = set()
    taken_hs: set[int] = set()
    out = []
    for row, a, b in zip(rows, sf, hs, strict=True):
        if a not in taken_sf and b not in taken_hs:
            taken_sf.add(int(a))
            taken_hs.add(int(b))
            out.append(row)
    return np.asarray(out, dtype=np.int64)


__all__ = ["MAX_DENSE_SIDE", "best_matching"]
