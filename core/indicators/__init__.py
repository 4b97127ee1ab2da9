"""Indicators: definitions as data, an engine that rolls hamlet → commune → province, and the national pack.

    from rasoat.core.indicators.engine import evaluate
    from rasoat.core.indicators.loading import collect
    results = evaluate(store, "2026", units=["19"], level="commune")   # the province and its communes

``models`` holds what an indicator is, ``periods`` the time windows, ``loading`` reading and merging packs,
``engine`` evaluation and ``freeze_snapshot(store, round)``, what closing a round stores for year-on-year
comparisons. The package imports none of them: importing a light one (``periods``) does not load the engine.
"""
