"""The ground floor's error type and exit codes: imported by every layer, so it depends on nothing."""

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input a user can fix: printed as one line, exit code 2."""
