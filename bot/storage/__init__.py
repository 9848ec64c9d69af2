"""Database: engine and migrations, inbox, conversations and reply chains, retention; no other layer."""
