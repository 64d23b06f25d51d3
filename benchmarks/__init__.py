"""cronfleet's benchmarks: ``make bench`` runs them (``python -m benchmarks``), see run.py."""
