"""Tests of the Flask plugin, on real Flask apps driven by Flask's test client."""
