"""Local, stateful emulators of the Salesforce and HubSpot APIs, reached through the real clients."""
