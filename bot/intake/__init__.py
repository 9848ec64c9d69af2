"""Taking updates in: polling or webhook into the inbox, per-chat workers, running until SIGTERM."""
