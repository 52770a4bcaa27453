"""What every part of pai leans on: errors and the ``@cli`` exit codes, atomic and safe I/O, fault points for
the tests, registries, seeding, thread limits and progress lines.  Nothing here imports the rest of pai."""
