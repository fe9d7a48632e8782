"""crm-sync: Salesforce <-> HubSpot sync as code a data team owns."""
