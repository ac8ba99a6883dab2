"""cvmatch matcher service."""
