"""The yearly drug-area assessment of Decision 28/2025/QĐ-TTg: a commune's class computed from the
registers (F1 persons, F6 hotspots, F7 cultivation, F9 cases) and the officer-entered facts (resident
population, key-route flag), the province's class (Art. 5), the level-by-level sign-off (Art. 7) and
the workbook a province sends. docs/assessment.md names the article behind each rule.

Modules: ``thresholds`` (the numbers, from forms/qd28_thresholds.csv), ``rules`` (the classification,
pure), ``facts`` (population and route entered by officers), ``registers`` (figures read from the
store), ``signoff`` (propose → accept/send back → approve, locked), ``workbook`` (the Excel the
province sends), ``management`` (Decree 105/2021 management records and the monthly lists).
"""
