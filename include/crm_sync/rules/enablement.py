"""The ``sync_enabled_at`` boundary that ACC-1/ACC-2 and DEAL-9 share.

A record created (or modified) *at* the instant syncing was switched on belongs to the synced
era: it is not "before" sync enabled at. Accounts and Opportunities use this one comparison so
that a record on the boundary is treated the same whatever its object.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def since_enabled(stamps: pd.Series, enabled_at: pd.Timestamp) -> np.ndarray:
    """True where a timestamp is at or after ``enabled_at``; an unknown time is never since."""
    return np.asarray((stamps >= enabled_at).to_numpy(dtype=bool, na_value=False), dtype=bool)
