"""The runtime's modules beside bootstrap.py."""
