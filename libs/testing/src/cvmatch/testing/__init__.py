"""cvmatch.testing: throwaway PostgreSQL, nats-server and Envoy for tests and local runs."""
