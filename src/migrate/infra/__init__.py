"""Provisioning through Pulumi's Automation API: one stack per phase.

`program` is the inline Pulumi program (the phase's rendered objects as
pulumi-kubernetes resources, Helm releases, the database Secret);
`stack` opens the phase's stack on the project's backend and runs preview,
up and destroy; `cluster` says, before Pulumi is started, whether the CLI
is installed and the cluster reachable, so a user gets a sentence rather
than a traceback. pulumi is imported only inside the functions that use it.
"""
