"""Deployment: compose stack, Dockerfiles, one-command local run, README and docs/."""
