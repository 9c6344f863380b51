"""Test infrastructure: fake models and embedders, a loopback delay proxy, a throwaway PostgreSQL."""
