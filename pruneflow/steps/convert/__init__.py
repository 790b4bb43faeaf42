"""Convert step: the ``stage`` schema (:mod:`.config`), the variants (:mod:`.variants`) and
the conversion (:mod:`.convert`)."""
