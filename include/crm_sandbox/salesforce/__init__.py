"""Salesforce REST API emulator (REST, SOQL, sObject collections, Bulk API 2.0) for crm-sync.

Start with :func:`crm_sandbox.salesforce.app.create_app`; see :mod:`.app` for the endpoints,
:mod:`.store` for the scenario shape (including Lead assignment rules and the session user) and
:mod:`.soql` for the supported SOQL.
"""
