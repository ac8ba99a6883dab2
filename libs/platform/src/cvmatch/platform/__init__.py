"""cvmatch.platform: what every cvmatch service is built on (settings, logging, errors, gRPC server,
database and migrations, transactional outbox, JetStream consumers, gRPC clients)."""
