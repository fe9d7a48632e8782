"""Backfills and resyncs run in chunks: windows, the chunk registry, progress, the staging lease.

``crm_backfill_opportunities`` imports historical Opportunities (ACC-2, DEAL-9) one creation-date
window at a time; ``crm_resync_accounts`` resyncs Account <-> company mappings in Id ranges of at
most 200,000 Accounts (ACC-8). Both run each chunk through the same rules, validation and loads
as ``crm_sync``; this package holds only what is specific to chunking.
"""
