"""Transports: thin protocols that turn bytes into calls on the session manager."""
