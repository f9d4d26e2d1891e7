"""The wire: MindSpore r1.6's FlatBuffers messages, encoded, decoded and verified.

``protocol`` builds and reads every request and reply of the device rounds
(docs/protocol.md) with the code generated from ``schema/*.fbs``; ``verify`` checks
any buffer against those same ``.fbs`` files before a generated accessor reads it.
Both the server and the model tools use it; it imports nothing from them.
"""
