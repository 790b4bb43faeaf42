"""Train step: the ``train`` schema (:mod:`.config`) and the cached baseline (:mod:`.train`)."""
