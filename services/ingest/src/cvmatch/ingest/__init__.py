"""cvmatch ingest service."""
