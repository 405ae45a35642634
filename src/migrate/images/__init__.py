"""Plugin images (DESIGN 3.7): build context, content-hash tags, build, push, list, rollback.

`context` assembles what the engine builds from (pure: reads files),
`wheelhouse` resolves requirements on the build machine, `engine` talks to
Docker (the `docker` package is imported there only), `builder` builds many
plugins at once, `ledger` remembers which tags migrate created, and `verbs`
holds `migrate images build|list|rollback`.
"""
