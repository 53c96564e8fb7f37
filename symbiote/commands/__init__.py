"""One module per sub-command of the ``symbiote`` command line (see ``symbiote.cli``)."""
