"""Cluster step: tfmot's weight clustering between pruning and conversion, configured by the
``cluster`` schema (:mod:`.config`), done by :mod:`.cluster`."""
