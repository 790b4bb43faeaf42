"""Prune step: the ``prune`` schema (:mod:`.config`), the pruning (:mod:`.prune`) and how a
target is spread over the layers (:mod:`.distributions`)."""
