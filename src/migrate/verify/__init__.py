"""`migrate verify`: each task's checks (DESIGN 3.6) run through testinfra.

`runner` groups the checks by host and runs the groups in parallel, `kinds`
turns one declarative check into testinfra calls, `behaviour` runs the checks
of the running system (`event_flow`, `cache_hit`) from this process, `urls`
says where that system answers (roadmap variables), `modules` runs a plain
testinfra module with pytest, `junit` writes the JUnit XML report.
"""
