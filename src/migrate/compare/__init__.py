"""Proof that the containerized plugins give the legacy answers, and how fast (issue 11).

Diffy's method (Twitter, later opendiffy): every recorded input goes through the
legacy code twice (primary and secondary) and through the plugin's image once
(candidate). What differs between primary and secondary is noise (timestamps,
ids, random order) and is ignored; what differs beyond it is a regression.

- `corpus`    the recorded invocations (`replay:` in migrate.yaml, or --inputs FILE)
- `legacy`    the plugin's code in a virtualenv made from its requirements, in a
              subprocess running `worker.py` (standard library only)
- `candidate` the plugin's image in a container this process starts and removes
- `diff`      JSON paths, differences, noise
- `loadgen`   the load generator of `bench` (asyncio, keep-alive HTTP/1.1)
- `verbs`     `compare()` and `bench()`, what api.py, the CLI and the checks call
"""
