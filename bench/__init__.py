"""The authmw benchmark (not a test).

Run ``python bench/run.py [--quick]``; ``bench/README.md`` explains the numbers.
"""
