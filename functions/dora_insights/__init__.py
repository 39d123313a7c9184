"""dora-insights: DORA metrics and deployment insights (one package, many Lambda entry points).

Layers, top to bottom (arrows only point down):
    handlers  -> wiring only: parse, authenticate, call one logic function, render
    dialects  -> request/response models of each API dialect and their mapping to the native model
    logic     -> use cases: take models, ports (repositories) and a clock
    domain    -> pure rules (no boto3, no I/O)
    dal       -> keys.py and the DynamoDB/SQS/EventBridge adapters: the only code importing boto3

Citations in comments and docstrings: ``METRICS §n`` is section n of docs/METRICS.md (what every number
means), ``API.md "Section"`` a section of docs/API.md (every route and dialect), ``DESIGN §n`` a section of
docs/DESIGN.md (architecture and conventions).
"""
