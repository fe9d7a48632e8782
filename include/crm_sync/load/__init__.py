"""Loading the plan into both CRMs: ordered, idempotent, rate-limit aware, nothing lost.

``writer`` is the contract each CRM's writer implements, ``items`` turns plan rows into ordered
write groups, ``refs`` resolves references to records created earlier in the run, ``runner``
applies one target's plan, ``deadletters`` keeps per-record failures for later runs, and
``bookkeeping`` advances links, snapshots and watermarks once the writes are done.
"""
