"""Data quality: validate the staged records and the plan before loading, and report afterwards.

Write-audit-publish: the rules write the plan to staging, :mod:`crm_sync.quality.validation`
audits it (expectation suites in code, :mod:`crm_sync.quality.suites`, run by Great
Expectations, :mod:`crm_sync.quality.gx`), and only the rows that pass reach the loaders. After
a load, :mod:`crm_sync.quality.comparison` compares every linked pair across both CRMs and
:mod:`crm_sync.quality.render` turns the figures into the report people open.
"""
