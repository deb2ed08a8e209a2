"""The verifier: measures models from the worker's artefacts, never from the worker's words.

It runs in its own sandbox, under its own uid, and never imports student code. An
artefact (grader.worker.export) is two graphs of ATen operators and the raw bytes of the
weights; everything a verdict rests on (layer rows, parameter counts, the forward pass,
gradients, dropout, the training smoke test) is computed here by running those graphs.
To make a forged artefact pass, a student has to hand in a network that is right.
"""
