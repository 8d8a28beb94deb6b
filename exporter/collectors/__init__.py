"""Sources of metrics: the collector contract (base.py) and the host collectors (host/).

Which collectors a config asks for is decided by exporter/registry.py, above every kind of collector.
"""
