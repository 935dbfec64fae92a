"""Helpers shared by the integration tests and the benchmarks: real peers, never mocks.

Plain Python (no pytest import) so ``benchmarks/`` can start the same Orthanc the tests use.
"""
