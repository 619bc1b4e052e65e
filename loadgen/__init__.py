"""Load during every fault: simulated teams delivering through Flux (locust users), and the faulted app serving.

`loadgen.run.LoadRun` sets the teams up for one scenario run and starts the load process (`python -m
loadgen.locustrun`, locust as a library, one process or a master and workers); the deliveries it records are cut
into windows (baseline, during the fault, after) by `loadgen.deliveries`, and `loadgen.serving` counts the faulted
app's Ready endpoints. The summary is judged by the `load` criterion (assertions.load_criterion).

Nothing here imports locust except the modules the load process runs (`locustrun`, `users`): locust
monkey-patches the process it is imported into (gevent), which the test session must never be.
"""
