"""symbiote.backends"""

#: the template ``symbiote search`` and ``symbiote cost`` use unless told (``--backend``, a hardware file)
DEFAULT_BACKEND = "systolic"
