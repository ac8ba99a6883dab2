"""cvmatch billing service."""
