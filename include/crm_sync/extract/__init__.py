"""Extraction: one module per source system (``salesforce``, ``hubspot``), pure parsing apart.

``records`` turns raw API records into typed staging rows or quarantine entries (no I/O);
``sink`` writes them to staging chunk by chunk; the source modules do the HTTP.
"""
