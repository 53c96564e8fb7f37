"""symbiote.search: co-optimize the model and the accelerator (see README.md).

``symbiote.search.api.run(RunConfig(...))`` runs one co-design end to end;
``symbiote.search.driver.Search`` is the generic gradient + evolution loop over any
``symbiote.search.problem.Problem``.
"""
