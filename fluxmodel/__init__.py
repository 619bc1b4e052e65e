"""A small shared model of Flux objects: kinds, conditions, annotations, error signatures, graphs.

recovery/, validation/, injectors/ and assertions/ all read Flux through this package, so each fact
about Flux (a group/version, an annotation, a message the controllers print) is written once.
"""
