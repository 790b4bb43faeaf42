"""Benchmark step: the ``benchmark`` schema (:mod:`.config`) and the timing (:mod:`.benchmark`)."""
