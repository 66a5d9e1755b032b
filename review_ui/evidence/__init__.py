"""Liaison cases and evidence: signed, verifiable packs for police, and evidence at rest.

Format of a pack: docs/formats/evidence-pack.md. :mod:`.verify` and :mod:`.timestamp`
import neither Elasticsearch nor the settings, so a pack can be checked on a machine
that has only the pack and the service's public key.
"""
