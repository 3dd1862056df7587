"""Production deployment files: docker-compose.yml, Dockerfile, .dockerignore, deploy/.

No Docker engine runs here, so nothing is built or started. What is checked:
- docker-compose.yml against the Compose Specification JSON schema vendored in
  check-jsonschema (`--builtin-schema vendor.compose-spec`), offline;
- the structure that matters, from the YAML with compose's `${VAR:-default}` interpolation
  applied: services, healthchecks, dependency conditions, the contract's env vars pointing
  at compose service names, a worker that scales, mounts and build inputs that exist;
- the monitoring services (Prometheus, Alertmanager, Grafana): pinned images, the ops/ files
  mounted where their configs expect them, ports, and ops/prometheus/prometheus.yml naming
  the compose services and ports it scrapes and alerts to;
- the Dockerfile's base image, user, port and ENTRYPOINT, read as text.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
TOKENS_EXAMPLE = REPO / "deploy" / "tokens.example.yaml"
# The operator creates this one from the example; it is the only input allowed to be missing.
OPERATOR_FILES = {REPO / "deploy" / "tokens.yaml"}

APP_SERVICES = ("api", "worker")
BACKING_SERVICES = ("kafka", "clickhouse")
MONITORING_SERVICES = ("prometheus", "alertmanager", "grafana")
PROMETHEUS_CONFIG = REPO / "ops" / "prometheus" / "prometheus.yml"
GRAFANA_DASHBOARD_PROVIDER = (
    REPO / "ops" / "grafana" / "provisioning" / "dashboards" / "coldchain.yml"
)


# --- helpers -------------------------------------------------------------------------------

_VAR = re.compile(
    r"\$\$"  # escaped dollar
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
    r"|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<other>\$)"
)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation, for the forms this file may use.

    `${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR-default}` and `$$`; anything else
    (`${VAR:?err}`, a lone `$`) fails the test rather than being guessed at.
    """
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        if m.group("other"):
            raise AssertionError(f"unsupported interpolation in {value!r}")
        name = m.group("braced") or m.group("plain")
        op, default = m.group("op"), m.group("default") or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")

    return _VAR.sub(repl, value)


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(raw, dict), "docker-compose.yml is not a mapping"
    return interpolate(raw, env or {})


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return doc["services"]


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        out: dict[str, str | None] = {}
        for item in env:
            key, sep, val = str(item).partition("=")
            out[key] = val if sep else None
        return out
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short form: no condition at all
        return {name: {"condition": "service_started"} for name in deps}
    return deps


def volumes(service: dict[str, Any]) -> list[dict[str, Any]]:
    """Each volume entry in long form: type, source, target, read_only."""
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, dict):
            out.append(v)
            continue
        parts = str(v).split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
        kind = "bind" if source and source.startswith((".", "/", "~")) else "volume"
        mode = parts[2] if len(parts) > 2 else ""
        out.append(
            {
                "type": kind if source else "volume",
                "source": source,
                "target": target,
                "read_only": "ro" in mode.split(","),
            }
        )
    return out


def command_port(service: dict[str, Any]) -> int:
    cmd = service["command"]
    args = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
    assert "--port" in args, f"command {args} names no --port"
    return int(args[args.index("--port") + 1])


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(t) for t in test)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def build_context(service: dict[str, Any]) -> tuple[Path, Path]:
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = (REPO / build.get("context", ".")).resolve()
    return context, context / build.get("dockerfile", "Dockerfile")


# --- schema --------------------------------------------------------------------------------


def run_check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    # The vendored schema needs no network: point every proxy at a closed port so that any
    # attempt to download something fails instead of quietly succeeding online.
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[name] = "http://127.0.0.1:9"
    argv = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    return subprocess.run(
        [*argv, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_compose_file_matches_compose_spec_schema() -> None:
    result = run_check_jsonschema(COMPOSE)
    assert result.returncode == 0, (
        "check-jsonschema --builtin-schema vendor.compose-spec failed on docker-compose.yml "
        f"(exit {result.returncode}).\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert "ok -- validation done" in result.stdout


def test_schema_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    """The validator really validates: a wrong depends_on condition is refused."""
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    doc["services"]["api"]["depends_on"] = {"kafka": {"condition": "healthy"}}
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
    result = run_check_jsonschema(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Schema validation errors were encountered" in result.stdout


# --- services ------------------------------------------------------------------------------


def test_services_exist(compose: dict[str, Any]) -> None:
    names = set(services(compose))
    assert {*BACKING_SERVICES, *APP_SERVICES, *MONITORING_SERVICES} <= names, names


def test_backing_service_images(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert svc["kafka"]["image"] == "apache/kafka:3.9.1"
    assert svc["clickhouse"]["image"] == "clickhouse/clickhouse-server:24.8"


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        test = check.get("test")
        assert test and test not in (["NONE"], "NONE"), f"{name}: empty healthcheck test"
        if isinstance(test, list):
            assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test {test}"


def test_app_healthchecks_probe_their_own_healthz(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = services(compose)[name]
        port = command_port(service)
        text = healthcheck_text(service)
        assert f"http://localhost:{port}/healthz" in text, f"{name}: {text}"
        # python:3.11-slim has no curl or wget: the probe must use the image's python.
        test = service["healthcheck"]["test"]
        assert isinstance(test, list), f"{name}: {test}"
        assert test[:3] == ["CMD", "python", "-c"], test


def test_backing_service_healthchecks(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert "kafka-broker-api-versions.sh --bootstrap-server localhost:9092" in healthcheck_text(
        svc["kafka"]
    )
    text = healthcheck_text(svc["clickhouse"])
    assert "clickhouse-client" in text or ":8123/ping" in text, text
    if "clickhouse-client" in text and environment(svc["clickhouse"]).get("CLICKHOUSE_USER"):
        # The image removes its passwordless `default` user once CLICKHOUSE_USER is set.
        assert "--user" in text and "--password" in text, text


def test_apps_wait_for_healthy_kafka_and_clickhouse(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        deps = depends_on(services(compose)[name])
        for backing in BACKING_SERVICES:
            assert backing in deps, f"{name} does not depend on {backing}"
            assert deps[backing].get("condition") == "service_healthy", (name, deps[backing])


# --- the contract's environment ------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "password"),
    [({}, "coldchain"), ({"CLICKHOUSE_PASSWORD": "s3cret-Value_1"}, "s3cret-Value_1")],
)
def test_apps_point_at_the_compose_services(env: dict[str, str], password: str) -> None:
    svc = services(load_compose(env))
    names = set(svc)
    kafka_env = environment(svc["kafka"])
    ch_env = environment(svc["clickhouse"])
    advertised = {
        urlsplit(listener).netloc
        for listener in (kafka_env["KAFKA_ADVERTISED_LISTENERS"] or "").split(",")
    }
    assert ch_env["CLICKHOUSE_PASSWORD"] == password

    for name in APP_SERVICES:
        app = environment(svc[name])
        bootstrap = app.get("COLDCHAIN_KAFKA_BOOTSTRAP")
        assert bootstrap, f"{name}: COLDCHAIN_KAFKA_BOOTSTRAP not set"
        for server in bootstrap.split(","):
            host, _, port = server.rpartition(":")
            assert host in names and host == "kafka", f"{name}: {server}"
            assert port.isdigit()
            assert server in advertised, f"{name}: {server} is not advertised ({advertised})"

        url = app.get("COLDCHAIN_CLICKHOUSE_URL")
        assert url, f"{name}: COLDCHAIN_CLICKHOUSE_URL not set"
        parts = urlsplit(url)
        assert parts.scheme == "clickhouse", url
        assert parts.hostname == "clickhouse" and parts.hostname in names, url
        assert parts.port == 9000, url  # native protocol, as clickhouse-driver speaks
        assert parts.username == ch_env["CLICKHOUSE_USER"], url
        assert parts.password == ch_env["CLICKHOUSE_PASSWORD"], url
        assert parts.path == "/" + (ch_env["CLICKHOUSE_DB"] or ""), url

        # The bundled Alertmanager unless the operator says otherwise.
        url = app.get("COLDCHAIN_ALERTMANAGER_URL")
        assert url == "http://alertmanager:9093", f"{name}: COLDCHAIN_ALERTMANAGER_URL={url}"
        parts = urlsplit(url)
        assert parts.hostname in names and parts.port == 9093, url
        # Links in pages go to the API as people reach it, not to a worker's own port.
        assert app.get("COLDCHAIN_PUBLIC_URL") == "http://localhost:8080", name


@pytest.mark.parametrize("url", ["http://am:9093", ""], ids=["another", "empty-sends-none"])
def test_alertmanager_url_passes_through(url: str) -> None:
    svc = services(load_compose({"COLDCHAIN_ALERTMANAGER_URL": url}))
    for name in APP_SERVICES:
        assert environment(svc[name])["COLDCHAIN_ALERTMANAGER_URL"] == url


def test_kafka_is_single_node_kraft(compose: dict[str, Any]) -> None:
    kafka = services(compose)["kafka"]
    env = environment(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith("1@")
    assert set(env["KAFKA_LISTENERS"].split(",")) == {"PLAINTEXT://:9092", "CONTROLLER://:9093"}
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    # CLUSTER_ID must be a base64url UUID (22 characters) or storage formatting fails.
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", env["CLUSTER_ID"] or "")
    # The image defaults log.dirs to /tmp: the data volume must be where the log dirs are.
    targets = {v["target"] for v in volumes(kafka) if v["type"] == "volume"}
    assert env["KAFKA_LOG_DIRS"] in targets, (env["KAFKA_LOG_DIRS"], targets)


def test_clickhouse_settings(compose: dict[str, Any]) -> None:
    ch = services(compose)["clickhouse"]
    env = environment(ch)
    assert env["CLICKHOUSE_DB"] == "coldchain"
    assert env["CLICKHOUSE_USER"]
    assert env["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"] == "1"
    nofile = ch["ulimits"]["nofile"]
    assert int(nofile["soft"]) == int(nofile["hard"]) == 262144
    targets = {v["target"] for v in volumes(ch) if v["type"] == "volume"}
    assert "/var/lib/clickhouse" in targets


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services(compose).items():
        for v in volumes(service):
            if v["type"] == "volume" and v.get("source"):
                assert v["source"] in declared, f"{name}: volume {v['source']} not declared"
    assert declared, "kafka and clickhouse keep their data in named volumes"


# --- api and worker ------------------------------------------------------------------------


def test_api_publishes_8080_and_mounts_the_tokens_file(compose: dict[str, Any]) -> None:
    api = services(compose)["api"]
    assert command_port(api) == 8080
    assert api["command"][0] == "api"
    assert any(str(p).split(":")[-2:] == ["8080", "8080"] for p in api["ports"]), api["ports"]
    tokens_file = environment(api)["COLDCHAIN_TOKENS_FILE"]
    mounts = [v for v in volumes(api) if v["target"] == tokens_file]
    assert len(mounts) == 1, f"nothing is mounted at COLDCHAIN_TOKENS_FILE={tokens_file}"
    mount = mounts[0]
    assert mount["type"] == "bind"
    assert (REPO / mount["source"]).resolve() == REPO / "deploy" / "tokens.yaml"
    assert mount.get("read_only") is True


def test_worker_scales(compose: dict[str, Any]) -> None:
    worker = services(compose)["worker"]
    assert worker["command"][0] == "worker"
    assert "ports" not in worker, "a published host port stops `--scale worker=N`"
    assert "container_name" not in worker, "a fixed container name stops `--scale worker=N`"
    assert int(worker["deploy"]["replicas"]) == 2
    scaled = services(load_compose({"COLDCHAIN_WORKERS": "5"}))["worker"]
    assert int(scaled["deploy"]["replicas"]) == 5


def test_api_and_worker_run_the_same_image(compose: dict[str, Any]) -> None:
    api, worker = (services(compose)[n] for n in APP_SERVICES)
    assert build_context(api) == build_context(worker)
    assert api.get("image") == worker.get("image")
    for name in APP_SERVICES:
        assert services(compose)[name].get("restart") == "unless-stopped", name


# --- monitoring ----------------------------------------------------------------------------


def mount(service: dict[str, Any], target: str) -> dict[str, Any]:
    found = [v for v in volumes(service) if v["target"] == target]
    assert len(found) == 1, f"nothing (or more than one thing) is mounted at {target}"
    return found[0]


def bind_source(service: dict[str, Any], target: str) -> Path:
    v = mount(service, target)
    assert v["type"] == "bind", v
    assert v.get("read_only") is True, f"{target} should be mounted read-only"
    return (REPO / str(v["source"])).resolve()


def flag(service: dict[str, Any], name: str) -> str:
    """The value of ``--name=value`` in the service's command."""
    values = [a.split("=", 1)[1] for a in service["command"] if a.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name} in {service['command']}"
    return str(values[0])


def published(service: dict[str, Any]) -> set[tuple[str, str]]:
    """(host port, container port) of each short-form `ports` entry."""
    pairs = set()
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        pairs.add((host.rpartition(":")[2], container))
    return pairs


def test_monitoring_images_are_pinned(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert re.fullmatch(r"prom/prometheus:v2\.53\.\d+", svc["prometheus"]["image"])
    assert re.fullmatch(r"prom/alertmanager:v0\.27\.\d+", svc["alertmanager"]["image"])
    assert re.fullmatch(r"grafana/grafana:11\.6\.\d+", svc["grafana"]["image"])
    for name in MONITORING_SERVICES:
        assert "build" not in svc[name], name
        assert svc[name].get("restart") == "unless-stopped", name


def test_monitoring_ports(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert ("9090", "9090") in published(svc["prometheus"])
    assert ("9093", "9093") in published(svc["alertmanager"])
    assert ("3000", "3000") in published(svc["grafana"])


def test_monitoring_healthchecks(compose: dict[str, Any]) -> None:
    svc = services(compose)
    # The prom/* images have busybox wget, no curl; the Grafana image (Alpine) has it too.
    for name, url in [
        ("prometheus", "http://localhost:9090/-/ready"),
        ("alertmanager", "http://localhost:9093/-/ready"),
        ("grafana", "http://localhost:3000/api/health"),
    ]:
        assert svc[name]["healthcheck"]["test"] == ["CMD", "wget", "-qO-", url], name


def test_prometheus_mounts_its_config_and_the_rules(compose: dict[str, Any]) -> None:
    prom = services(compose)["prometheus"]
    config_path = flag(prom, "config.file")
    assert bind_source(prom, config_path) == PROMETHEUS_CONFIG
    rules = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))["rule_files"]
    assert rules == ["/etc/prometheus/rules/*.yml"], rules
    assert bind_source(prom, "/etc/prometheus/rules") == REPO / "ops" / "prometheus" / "rules"
    assert list((REPO / "ops" / "prometheus" / "rules").glob("*.yml")), "no rule files"
    storage = mount(prom, flag(prom, "storage.tsdb.path"))
    assert storage["type"] == "volume", storage


def test_prometheus_scrapes_and_alerts_to_the_compose_services(compose: dict[str, Any]) -> None:
    svc = services(compose)
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # The API: its one container, on the port its command serves /metrics on.
    (api_target,) = jobs["coldchain-api"]["static_configs"][0]["targets"]
    assert api_target == f"api:{command_port(svc['api'])}"
    # Every worker replica: the DNS name is the service, the port what each worker serves.
    (dns,) = jobs["coldchain-worker"]["dns_sd_configs"]
    assert dns["names"] == ["worker"] and dns["type"] == "A"
    worker = svc["worker"]
    assert dns["port"] == command_port(worker) == 8081
    assert str(dns["port"]) in [str(p) for p in worker.get("expose", [])]
    assert "--host" in worker["command"]
    assert worker["command"][worker["command"].index("--host") + 1] == "0.0.0.0"
    (manager,) = config["alerting"]["alertmanagers"]
    (target,) = manager["static_configs"][0]["targets"]
    host, _, port = target.partition(":")
    assert host == "alertmanager" and host in svc
    assert (port, port) in published(svc["alertmanager"])


def test_alertmanager_mounts_its_config(compose: dict[str, Any]) -> None:
    am = services(compose)["alertmanager"]
    assert bind_source(am, flag(am, "config.file")) == REPO / "ops" / "alertmanager.yml"
    assert mount(am, flag(am, "storage.path"))["type"] == "volume"
    # One instance: no gossip listener (and no warning about a cluster of one).
    assert "--cluster.listen-address=" in am["command"]


def test_grafana_provisions_from_ops(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    provisioning = REPO / "ops" / "grafana" / "provisioning"
    assert bind_source(grafana, "/etc/grafana/provisioning") == provisioning
    dashboards = bind_source(grafana, "/var/lib/grafana/dashboards")
    assert dashboards == REPO / "ops" / "grafana" / "dashboards"
    # The dashboard provider reads the folder the dashboards are mounted at.
    provider = yaml.safe_load(GRAFANA_DASHBOARD_PROVIDER.read_text(encoding="utf-8"))
    paths = [p["options"]["path"] for p in provider["providers"]]
    assert paths == ["/var/lib/grafana/dashboards"], paths
    assert list(dashboards.glob("*.json")), "no dashboards"
    # The provisioned datasource is the compose service.
    datasources = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"]
    prom = services(compose)["prometheus"]
    for source in datasources:
        url = urlsplit(source["url"])
        assert url.hostname == "prometheus", source
        assert (str(url.port), str(url.port)) in published(prom), source
    assert mount(grafana, "/var/lib/grafana")["type"] == "volume"


@pytest.mark.parametrize(
    ("env", "password"), [({}, "admin"), ({"GRAFANA_ADMIN_PASSWORD": "s3cret"}, "s3cret")]
)
def test_grafana_login(env: dict[str, str], password: str) -> None:
    grafana_env = environment(services(load_compose(env))["grafana"])
    assert grafana_env["GF_SECURITY_ADMIN_PASSWORD"] == password
    assert grafana_env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana_env.get("GF_USERS_ALLOW_SIGN_UP") == "false"


# --- files compose builds from or mounts ---------------------------------------------------


def test_build_context_and_dockerfile_exist(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        if "build" in service:
            context, dockerfile = build_context(service)
            assert context.is_dir(), f"{name}: build context {context} missing"
            assert dockerfile.is_file(), f"{name}: {dockerfile} missing"


def test_bind_mount_sources_exist(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for v in volumes(service):
            if v["type"] != "bind":
                continue
            source = (REPO / v["source"]).resolve()
            assert REPO in source.parents, f"{name}: {source} is outside the repository"
            if source in OPERATOR_FILES:
                example = source.with_name(source.stem + ".example" + source.suffix)
                assert example.is_file(), f"{name}: {source} has no example {example}"
                # Docker would create a missing bind source as a directory; refuse instead.
                assert v.get("bind", {}).get("create_host_path") is False, name
            else:
                assert source.exists(), f"{name}: bind mount source {source} missing"


def copy_sources() -> list[str]:
    sources = []
    for instruction, args in dockerfile_instructions():
        if instruction not in ("COPY", "ADD"):
            continue
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        assert not any(w.startswith("--from") for w in shlex.split(args))
        sources += words[:-1]
    return sources


def test_dockerfile_copy_sources_exist_and_are_not_dockerignored() -> None:
    sources = copy_sources()
    expected = {"pyproject.toml", "README.md", "constraints.txt"}
    expected |= {"schemas", "pipeline", "connectors", "coldchain"}
    assert expected <= {s.rstrip("/") for s in sources}, sources
    patterns = [
        line.strip().lstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith(("#", "!"))
    ]
    missing = [s for s in sources if not (REPO / s).exists()]
    assert not missing, f"docker build would fail: COPY sources missing from the repo: {missing}"
    for source in sources:
        name = source.rstrip("/")
        for pattern in patterns:
            bare = pattern.removeprefix("**/")
            assert not (fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(name, bare)), (
                f".dockerignore pattern {pattern!r} excludes COPY source {source!r}"
            )


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    lines = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    for entry in (".venv", ".git", "deploy/tokens.yaml", ".pytest_cache", "coldchain-data"):
        assert entry in lines, f".dockerignore does not exclude {entry}"


# --- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    by_name: dict[str, list[str]] = {}
    for instruction, args in instructions:
        by_name.setdefault(instruction, []).append(args)

    assert by_name["FROM"][0].split()[0].startswith("python:3.11-slim"), by_name["FROM"]
    assert len(by_name["FROM"]) == 1, "single stage"
    installs = [run for run in by_name["RUN"] if "pip install" in run]
    assert len(installs) == 1, installs
    # The project itself, with the dependency versions CI tested.
    assert re.search(r"pip install --no-cache-dir -c constraints\.txt \.(\s|$)", installs[0])
    assert by_name["ENTRYPOINT"], "no ENTRYPOINT"
    assert json.loads(by_name["ENTRYPOINT"][-1]) == ["coldchain"]
    assert "8080" in " ".join(by_name["EXPOSE"]).split()

    # The last USER is who runs the process: not root, and set after the install.
    last_user = max(i for i, (name, _) in enumerate(instructions) if name == "USER")
    user = instructions[last_user][1].split(":")[0]
    assert user not in ("root", "0"), user
    last_pip = max(i for i, (name, a) in enumerate(instructions) if "pip install" in a)
    assert last_user > last_pip


# --- deploy/ -------------------------------------------------------------------------------


def test_tokens_example_is_in_the_contract_format() -> None:
    text = TOKENS_EXAMPLE.read_text(encoding="utf-8")
    assert "coldchain token new --role site --site CS-001" in text
    assert "coldchain token new --role regulator" in text
    doc = yaml.safe_load(text)
    assert set(doc) == {"tokens"}
    entries = doc["tokens"]
    assert entries and {e["role"] for e in entries} == {"site", "regulator"}
    for entry in entries:
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), entry
        assert set(entry) <= {"sha256", "role", "sites"}, "digests only, never tokens"
        if entry["role"] == "site":
            assert entry["sites"] and all(isinstance(s, str) for s in entry["sites"])
        else:
            assert "sites" not in entry
    assert (REPO / "deploy" / "README.md").is_file()
