"""Test helpers: real servers (upstream, plugins, DNS, Redis Cluster) and shared fixtures code."""
