"""cvmatch notifier service."""
