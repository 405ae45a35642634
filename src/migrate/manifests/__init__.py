"""Kubernetes manifests of the target architecture, phase by phase.

`render` turns the roadmap's `manifests` and `infra` tasks into Kubernetes
objects (Jinja2 templates under templates/k8s) plus the Helm releases Pulumi
installs; `validate` checks the core objects against the Kubernetes JSON
schemas; `applied` keeps the set last applied, which `plan` diffs against.
Nothing here needs a cluster or the Pulumi CLI.
"""
