"""The container plan of `migrate dev up`, with no engine: names, labels, environment
per role, the event graph, ports, secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from migrate.dev import plan
from migrate.errors import UserError
from migrate.inventory import Plugin, scan
from migrate.runtime import settings
from migrate.secrets import Secret
from tests.conftest import EXAMPLE_APP

PASSWORD = "s3cret-pw"
PLUGINS = scan(EXAMPLE_APP).plugins
CONSUMERS = [p for p in PLUGINS if p.manifest.events.consumes]


def ports() -> Iterator[int]:
    yield from range(41000, 42000)


def make(
    network: plan.Network = "host",
    *,
    bus_url: str | None = None,
    database: plan.ExternalDatabase | None = None,
    plugins: tuple[Plugin, ...] = PLUGINS,
    cache: dict[str, int] | None = None,
    images: dict[str, str] | None = None,
) -> plan.DevPlan:
    numbers = ports()
    given: dict[str, int] = {}

    def port(name: str) -> int:
        assert name not in given, f"asked twice for the port of {name}"
        given[name] = next(numbers)
        return given[name]

    inputs = plan.Inputs(
        project="demo",
        network=network,
        plugins=plugins,
        images=plan.Images(
            plugins=images or {p.name: f"demo/{p.name.lower()}:0123456789ab" for p in PLUGINS},
            orchestrator="demo/orchestrator:ba9876543210",
            redis="redis:7-alpine",
            postgres="postgres:16-alpine",
        ),
        schema="legacy",
        bus_url=Secret(bus_url) if bus_url else None,
        database=database,
        postgres_password=Secret(PASSWORD),
        cache_ttl_s=cache or {},
    )
    return plan.build(inputs, port)


def by_name(the_plan: plan.DevPlan) -> dict[str, plan.ContainerSpec]:
    return {c.name: c for c in the_plan.containers}


def test_containers_names_and_roles() -> None:
    the_plan = make()
    roles = [(c.role, c.plugin) for c in the_plan.containers]
    assert roles[:3] == [("redis", None), ("postgres", None), ("orchestrator", None)]
    for plugin in PLUGINS:
        assert ("service", plugin.name) in roles
        assert (("worker", plugin.name) in roles) == bool(plugin.manifest.events.consumes)
    names = the_plan.names()
    assert len(set(names)) == len(names)
    assert "demo-dev-redis" in names and "demo-dev-postgres" in names
    assert "demo-dev-orchestrator" in names
    assert "demo-dev-worker-report-writer" in names  # the plugin's name made a slug
    assert "demo-dev-service-code-reviewer" in names
    assert len(the_plan.containers) == 3 + len(PLUGINS) + len(CONSUMERS)


def test_labels() -> None:
    spec = by_name(make())["demo-dev-worker-report-writer"]
    labels = spec.labels("demo", "abc")
    assert labels == {
        "io.migrate.project": "demo",
        "io.migrate.dev": "1",
        "io.migrate.role": "worker",
        "io.migrate.plugin": "Report-Writer",
        "io.migrate.url": spec.url,
        "io.migrate.port": str(spec.port),
        "io.migrate.dev-spec": "abc",
    }
    assert by_name(make())["demo-dev-orchestrator"].labels("demo", "x")["io.migrate.plugin"] == ""


def test_every_variable_is_read_by_the_runtime_in_that_role() -> None:
    """Manifests and `dev up` may set only variables the runtime reads (settings.VARIABLES)."""
    roles = {v.name: set(v.roles) for v in settings.VARIABLES}
    plans = [
        make(),
        make("bridge"),
        make(bus_url="redis://127.0.0.1:6390/3", cache={"summarizer": 60}),
    ]
    seen = set()
    for the_plan in plans:
        for spec in the_plan.runtime:
            for name in spec.environment():
                assert name in roles, f"{spec.name} sets {name}, which the runtime never reads"
                assert spec.role in roles[name], f"{spec.name}: {name} is not read by {spec.role}"
                seen.add(name)
    assert {"MIGRATE_EVENT_GRAPH", "MIGRATE_CONSUMES", "MIGRATE_CACHE_TTL_S"} <= seen


def test_orchestrator_environment() -> None:
    containers = by_name(make(bus_url="redis://127.0.0.1:6390/3"))
    spec, postgres = containers["demo-dev-orchestrator"], containers["demo-dev-postgres"]
    env = spec.environment()
    assert env["MIGRATE_ROLE"] == "orchestrator"
    assert env["MIGRATE_BUS"] == "redis" and env["REDIS_URL"] == "redis://127.0.0.1:6390/3"
    assert env["DATABASE_SCHEMA"] == "legacy"
    assert env["DATABASE_URL"] == (
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:{postgres.port}/postgres"
    )
    assert env["HOST"] == "127.0.0.1" and env["PORT"] == str(spec.port)
    assert spec.url == f"http://127.0.0.1:{spec.port}"
    graph = json.loads(env["MIGRATE_EVENT_GRAPH"])
    assert graph["planner"] == {"consumes": ["task.created"], "produces": ["plan.ready"]}
    assert graph["Report-Writer"] == {
        "consumes": ["review.done", "research.done"],
        "produces": ["report.ready"],
    }
    assert set(graph) == {p.name for p in PLUGINS}


def test_worker_and_service_environment() -> None:
    containers = by_name(make(cache={"summarizer": 300}))
    worker = containers["demo-dev-worker-notifier"].environment()
    redis = containers["demo-dev-redis"]
    assert worker == {
        "MIGRATE_ROLE": "worker",
        "HOST": "127.0.0.1",
        "PORT": worker["PORT"],
        "MIGRATE_PLUGIN": "notifier",
        "MIGRATE_BUS": "redis",
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "MIGRATE_CONSUMES": "summary.ready,report.ready",
        "MIGRATE_PRODUCES": "notification.sent",
        "MIGRATE_GROUP": "notifier-worker",
        "MIGRATE_CONSUMER": "demo-dev-worker-notifier",
    }
    service = containers["demo-dev-service-notifier"].environment()
    assert service == {
        "MIGRATE_ROLE": "service",
        "HOST": "127.0.0.1",
        "PORT": service["PORT"],
        "MIGRATE_PLUGIN": "notifier",
    }
    cached = containers["demo-dev-worker-summarizer"].environment()
    assert cached["MIGRATE_CACHE_TTL_S"] == "300"
    assert cached["MIGRATE_CACHE_URL"] == redis.url
    assert containers["demo-dev-service-summarizer"].environment()["MIGRATE_CACHE_TTL_S"] == "300"


def test_every_container_gets_its_own_port_on_loopback() -> None:
    the_plan = make()
    assert len({c.port for c in the_plan.containers}) == len(the_plan.containers)
    for spec in the_plan.runtime:
        assert spec.container_port == spec.port
        assert spec.url.startswith("http://127.0.0.1:")
    redis = by_name(the_plan)["demo-dev-redis"]
    assert redis.command is not None
    assert redis.command[:5] == ("redis-server", "--bind", "127.0.0.1", "--port", str(redis.port))
    postgres = by_name(the_plan)["demo-dev-postgres"]
    assert "listen_addresses=127.0.0.1" in (postgres.command or ())


def test_bridge_listens_inside_and_publishes_on_loopback() -> None:
    the_plan = make("bridge")
    assert the_plan.network_name == "demo-dev"
    containers = by_name(the_plan)
    worker = containers["demo-dev-worker-planner"]
    env = worker.environment()
    assert env["HOST"] == "0.0.0.0" and env["PORT"] == "8080"
    assert worker.container_port == 8080 and worker.url == f"http://127.0.0.1:{worker.port}"
    assert env["REDIS_URL"] == "redis://demo-dev-redis:6379/0"
    orchestrator = containers["demo-dev-orchestrator"].environment()
    assert orchestrator["DATABASE_URL"].endswith("@demo-dev-postgres:5432/postgres")
    assert make("host").network_name is None


def test_given_bus_and_database_start_no_redis_nor_postgres() -> None:
    database = plan.external_database("postgresql://u:pw@127.0.0.1:5433/runs", "host")
    the_plan = make(bus_url="redis://127.0.0.1:6390/5", database=database)
    assert [c.role for c in the_plan.infra] == []
    env = the_plan.orchestrator.environment()
    assert env["DATABASE_URL"] == "postgresql://u:pw@127.0.0.1:5433/runs"
    assert env["REDIS_URL"] == "redis://127.0.0.1:6390/5"


def test_only_the_named_plugins_and_their_graph() -> None:
    planner = next(p for p in PLUGINS if p.name == "planner")
    the_plan = make(plugins=(planner,))
    assert {c.plugin for c in the_plan.runtime} == {None, "planner"}
    graph = json.loads(the_plan.orchestrator.environment()["MIGRATE_EVENT_GRAPH"])
    assert list(graph) == ["planner"]


def test_secrets_stay_masked() -> None:
    the_plan = make()
    orchestrator = the_plan.orchestrator
    postgres = by_name(the_plan)["demo-dev-postgres"]
    for spec in (orchestrator, postgres):
        assert PASSWORD not in repr(spec)
        assert PASSWORD not in json.dumps(spec.masked_environment())
        assert PASSWORD not in spec.url
        assert PASSWORD not in json.dumps(spec.labels("demo", "x"))
    assert PASSWORD in orchestrator.environment()["DATABASE_URL"]  # for the engine only
    assert postgres.environment()["POSTGRES_PASSWORD"] == PASSWORD


def test_digest_follows_image_and_environment() -> None:
    first = by_name(make())["demo-dev-worker-planner"]
    again = by_name(make())["demo-dev-worker-planner"]
    assert first.digest("sha256:1", "host") == again.digest("sha256:1", "host")
    assert first.digest("sha256:1", "host") != first.digest("sha256:2", "host")
    cached = by_name(make(cache={"planner": 5}))["demo-dev-worker-planner"]
    assert cached.digest("sha256:1", "host") != first.digest("sha256:1", "host")
    assert first.digest("sha256:1", "host") != first.digest("sha256:1", "bridge")


def test_plugins_whose_names_collide_are_refused() -> None:
    planner = next(p for p in PLUGINS if p.name == "planner")
    twin = Plugin("Planner", planner.path, planner.manifest)
    images = {"planner": "demo/planner:1", "Planner": "demo/planner:2"}
    with pytest.raises(UserError, match="would both run as demo-dev-service-planner"):
        make(plugins=(planner, twin), images=images)


def test_bus_url_must_be_redis() -> None:
    with pytest.raises(UserError, match=r"redis:// or rediss://") as caught:
        plan.bus_url("kafka://user:pw@broker:9092", "host")
    assert "pw" not in str(caught.value)
    assert plan.bus_url("redis://127.0.0.1:6390/2", "host").reveal() == "redis://127.0.0.1:6390/2"


def test_loopback_urls_are_refused_with_bridge() -> None:
    with pytest.raises(UserError, match="bridge network cannot reach"):
        plan.bus_url("redis://localhost:6379/0", "bridge")
    with pytest.raises(UserError, match="bridge network cannot reach") as caught:
        plan.external_database("postgresql://u:topsecret@127.0.0.1:5432/db", "bridge")
    assert "topsecret" not in str(caught.value)


def test_a_socket_directory_is_mounted() -> None:
    database = plan.external_database("user=postgres dbname=t_1 host=/tmp/pg/data", "host")
    assert database.mount == plan.Mount(
        "/tmp/pg/data/.s.PGSQL.5432", "/run/migrate-dev/postgresql/.s.PGSQL.5432"
    )
    assert "host=/run/migrate-dev/postgresql" in database.url.reveal()
    assert "dbname=t_1" in database.url.reveal()
    url = "postgresql://postgres:@/postgres?host=/var/run/pg&port=5499"
    other = plan.external_database(url, "bridge")  # a socket works on any network
    assert other.mount is not None and other.mount.source == "/var/run/pg/.s.PGSQL.5499"


def test_database_url_needs_a_host() -> None:
    with pytest.raises(UserError, match="names no host"):
        plan.external_database("postgresql:///db", "host")
    with pytest.raises(UserError, match="is not a PostgreSQL URL"):
        plan.external_database("not a url at all = =", "host")
