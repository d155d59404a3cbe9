"""Pure logic with no Django and no network: bytes in, bytes out.

In the spirit of Flask's ``sansio`` folder, everything here can be tested and benchmarked
without a database, a broker or a socket:

- ``csvfile``: parse and validate an input catalogue CSV; write the result CSV.
- ``urls``: which image URLs are accepted, and in what form they are kept.
- ``messages``: how values are quoted in the messages people read.
- ``images``: the image transform (decode, orient, resize, re-encode).
- ``pixelmodes``: the pixel mode the transform resizes in; transparency onto a background.
- ``encoding``: the output written in its format, with the encoder settings.
- ``contentkeys``: the key an output is stored and shared under (input bytes + options + engine).
- ``addresses``: the policy on which IP addresses the service may fetch from.
"""
