"""Rotates Azure Cosmos DB account keys and publishes each new connection string to Key Vault."""

__version__ = "0.1.0"
