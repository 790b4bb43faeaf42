"""Data step: the ``dataset`` group's schemas (:mod:`.config`) and loaders (:mod:`.loaders`)."""
