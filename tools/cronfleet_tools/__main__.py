"""`python -m cronfleet_tools`: the same as the `cronfleet` command."""

from cronfleet_tools.cli.app import main

main()
