"""The normalized model: one set of tables whatever tracer produced the bundle.

Owned by the parser layer. Interface (used by tracer.analysis, notebooks, report, export):

    model = load_bundle(path)            # a run bundle directory (see tracer.capture.bundle)
    model.events    -> DataFrame  (MODEL_TABLES["events"])
    model.syscalls  -> DataFrame  (MODEL_TABLES["syscalls"])
    model.ios       -> DataFrame  (MODEL_TABLES["ios"])
    model.threads   -> DataFrame  (MODEL_TABLES["threads"])
    model.unparsed  -> DataFrame  (MODEL_TABLES["unparsed"])
    model.losses    -> dict       {"dropped_events": int, "unparsed_lines": int, "messages": [str, ...]}
    model.manifest  -> dict       (the bundle's manifest.json)
    model.summary   -> dict       (the workload's summary.json)
    model.window    -> (start_ns, stop_ns) or None
    model.has(table, *columns) -> bool   (non-empty table with non-null columns)
"""
