"""cvmatch gateway service."""
