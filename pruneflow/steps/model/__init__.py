"""Model step: the ``backbone`` group's schemas (:mod:`.config`) and builders (:mod:`.build`)."""
