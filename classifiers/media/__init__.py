"""Safe image decoding and hashing for the analyzer (the API is in ``hashing``).

Public, stable API (the analyzer imports only these names)::

    from classifiers.media.hashing import hash_image, media_hashes, ImageRefused, Limits

    hashes = hash_image(data)            # -> ImageHashes, or raises ImageRefused
    hashes.to_contract()                 # -> harmwatch.contract.MediaHashes (first frame)
    media_hashes(data)                   # -> MediaHashes; never raises, error field set
    crop_resistant_hash(data)            # -> "hex,hex,..." region hashes (slow: on demand)

``ImageHashes`` carries MD5/SHA-1/SHA-256 of the bytes and, per sampled frame, PDQ with
its quality and eight rotation/flip variants, 64-bit pHash and dHash (all lowercase hex);
frame 0 is hashed a second time without its uniform border when it has one
(``FrameHashes.trimmed``).
Pass it to :class:`classifiers.banks.matcher.Matcher` to match against the hash banks.
``ImageRefused.reason`` is one of: empty, too_many_bytes, not_an_image, too_many_pixels,
truncated, corrupt.
"""
