"""A stateful, in-memory emulator of the HubSpot CRM API, reached through ``hubspot-api-client``.

The entry point is :func:`crm_sandbox.hubspot.app.create_app`. The emulator answers the CRM v3
objects, search, properties, pipelines and owners APIs and the v4 associations API in HubSpot's
own JSON shapes, including its errors, limits and rate-limit headers, so code that syncs correctly
against it behaves the same against a real portal.
"""
