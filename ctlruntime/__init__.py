"""The controller runtime under the recovery operator and the stage controller (kopf's `_cogs` being the model).

The API protocol, informers, the work queue, leader election, the probe server, startup waits, logs, flags,
one-line CLI errors and time parsing: what any controller here needs and nothing about what it controls. Part of
the system under test: it imports only the ground below it (kubeapi, foundation), never the harness.
"""
