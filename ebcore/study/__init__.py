"""The study: everything the notebooks drive to reproduce "Early-Bird Lottery Tickets for Transformers".

Offline data sets, the registry of model families and run profiles, a small training loop, the
early-bird pipeline with its controls and exact cost accounting, statistics and verdicts, tables,
figures, and the command line (`python -m ebcore`). It is built on the library one level up
(`ebcore`: adapters, graph, scores, masks, detector, watch, surgery, io, measure, hf), which never
imports from here.
"""
