"""`python -m cronfleet`: the same as the `cronfleet` command."""

from cronfleet.cli import main

main()
