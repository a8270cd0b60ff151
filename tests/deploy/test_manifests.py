"""The compose file, Kubernetes manifests, Dockerfile and systemd unit say what we rely on."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import DEPLOY, Instruction

K8S = DEPLOY / "k8s"
REGISTRY_ENV = {
    "REGISTRY_DATABASE_URL",
    "REGISTRY_RATELIMIT_STORAGE",
    "REGISTRY_BASE_URL",
    "REGISTRY_KEYS_DIR",
    "REGISTRY_DATA_KEY",
}
REGISTRY_PODS = [
    "Deployment/registry",
    "Job/registry-migrate",
    "Deployment/registry-surveillance-worker",
    "Deployment/registry-log-sequencer",
    "Deployment/registry-rulesets-worker",
]
# the background workers: one process each, the app's image and settings, no traffic

WORKERS = {
    "surveillance-worker": ["registry", "surveillance", "worker"],
    "rulesets-worker": ["registry", "rulesets", "worker"],
    "log-sequencer": ["registry", "log", "sequence"],
}
GUNICORN_CMD = ["gunicorn", "-c", "deploy/gunicorn.conf.py", "registry.wsgi:app"]
WEASYPRINT_PACKAGES = {
    "libpango-1.0-0",
    "libpangoft2-1.0-0",
    "libharfbuzz0b",
    "libharfbuzz-subset0",
    "fonts-dejavu-core",
    "fonts-noto-core",
}


# --- docker compose ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_compose_has_the_eight_services(compose):
    assert set(compose["services"]) == {
        "app",
        "migrate",
        "postgres",
        "redis",
        "nginx",
        "surveillance-worker",
        "rulesets-worker",
        "log-sequencer",
    }


@pytest.mark.parametrize("service", sorted(WORKERS))
def test_compose_workers_run_after_migration(compose, service):
    worker = compose["services"][service]
    assert worker["command"] == WORKERS[service]
    assert worker["image"] == compose["services"]["app"]["image"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert worker["restart"] == "unless-stopped"
    assert "ports" not in worker and "expose" not in worker  # nothing connects to it
    assert worker["read_only"] is True
    assert worker["cap_drop"] == ["ALL"]
    assert "registry-keys:/run/registry-keys:ro" in worker["volumes"]


def test_compose_app_waits_for_a_successful_migration_and_healthy_stores(compose):
    depends = compose["services"]["app"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    migrate = compose["services"]["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    nginx = compose["services"]["nginx"]["depends_on"]["app"]
    assert nginx == {"condition": "service_healthy", "restart": True}


def test_compose_migrate_runs_registry_init_once(compose):
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["registry", "init"]
    assert migrate["restart"] == "no"


@pytest.mark.parametrize("service", ["app", "migrate", *sorted(WORKERS)])
def test_compose_registry_services_get_the_production_settings(compose, service):
    env = compose["services"][service]["environment"]
    assert set(env) >= REGISTRY_ENV
    assert env["REGISTRY_DATABASE_URL"].startswith("postgresql+psycopg://registry:${")
    assert env["REGISTRY_DATABASE_URL"].endswith("@postgres:5432/registry")
    assert env["REGISTRY_RATELIMIT_STORAGE"] == "redis://redis:6379/0"
    assert env["REGISTRY_KEYS_DIR"] == "/run/registry-keys"
    # Secrets come from deploy/.env and must be set: ${NAME:?message}, never a literal.
    assert env["REGISTRY_DATA_KEY"].startswith("${REGISTRY_DATA_KEY:?")
    assert env["REGISTRY_BASE_URL"].startswith("${REGISTRY_BASE_URL:?")


def test_compose_app_gets_multiprocess_metrics_and_trusts_only_its_proxy(compose):
    app = compose["services"]["app"]
    env = app["environment"]
    assert env["PROMETHEUS_MULTIPROC_DIR"] in app["tmpfs"]
    assert "ports" not in app, "gunicorn must only be reachable through nginx"
    assert env["REGISTRY_FORWARDED_ALLOW_IPS"] == "*"


def test_compose_keys_volume_is_written_by_migrate_and_read_only_for_app(compose):
    services = compose["services"]
    assert "registry-keys:/run/registry-keys" in services["migrate"]["volumes"]
    assert "registry-keys:/run/registry-keys:ro" in services["app"]["volumes"]
    assert "registry-keys" in compose["volumes"]


def test_compose_app_container_is_locked_down(compose):
    app = compose["services"]["app"]
    assert app["read_only"] is True
    assert app["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in app["security_opt"]


def test_compose_postgres_is_16_with_a_volume_and_a_healthcheck(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "postgres-data" in compose["volumes"]


def test_compose_redis_is_7_with_a_healthcheck(compose):
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_compose_nginx_uses_our_config_and_serves_https(compose):
    nginx = compose["services"]["nginx"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert "443:443" in nginx["ports"]
    assert (DEPLOY / "nginx.conf").is_file()


def test_compose_builds_from_the_repository_root(compose):
    for name in ("app", "migrate"):
        build = compose["services"][name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert (context / "pyproject.toml").is_file()
        assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_env_example_names_every_variable_compose_interpolates():
    used = set(re.findall(r"\$\{([A-Z_]+)", (DEPLOY / "docker-compose.yml").read_text()))
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used <= example
    assert {"POSTGRES_PASSWORD", "REGISTRY_DATA_KEY", "REGISTRY_BASE_URL"} <= used


def test_filled_in_env_file_is_ignored_by_git():
    assert ".env" in (DEPLOY / ".gitignore").read_text().splitlines()


# --- Kubernetes ----------------------------------------------------------------------------


def _load_k8s() -> dict[tuple[str, str], dict]:
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"{key} defined twice"
            objects[key] = {**doc, "_file": path.name}
    return objects


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict]:
    return _load_k8s()


def _pod_specs(k8s) -> dict[str, dict]:
    return {
        f"{kind}/{name}": obj["spec"]["template"]["spec"]
        for (kind, name), obj in k8s.items()
        if kind in ("Deployment", "Job")
    }


def _container(k8s, kind: str, name: str) -> dict:
    (container,) = k8s[(kind, name)]["spec"]["template"]["spec"]["containers"]
    return container


def test_k8s_every_object_is_in_the_registry_namespace(k8s):
    assert ("Namespace", "registry") in k8s
    for (kind, name), obj in k8s.items():
        assert obj["apiVersion"] and obj["kind"]
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == "registry", f"{kind}/{name}"


def test_k8s_has_the_objects_a_production_deployment_needs(k8s):
    kinds = {kind for kind, _ in k8s}
    assert {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "Job",
        "PodDisruptionBudget",
        "NetworkPolicy",
    } <= kinds


def test_k8s_namespace_enforces_restricted_pod_security(k8s):
    labels = k8s[("Namespace", "registry")]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_kustomization_applies_everything_but_secrets_and_the_job():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed <= on_disk
    assert on_disk - listed == {"secret.yaml", "migrate-job.yaml"}


def test_k8s_deployment_probes_readyz_and_healthz(k8s):
    container = _container(k8s, "Deployment", "registry")
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports


def test_k8s_deployment_runs_gunicorn_with_our_config(k8s):
    container = _container(k8s, "Deployment", "registry")
    assert container["command"] == GUNICORN_CMD


def test_k8s_deployment_leaves_replicas_to_the_autoscaler(k8s):
    assert "replicas" not in k8s[("Deployment", "registry")]["spec"]


def test_k8s_deployment_gives_gunicorn_time_to_finish_requests(k8s):
    pod = k8s[("Deployment", "registry")]["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    pause = int(re.search(r"sleep\((\d+)\)", " ".join(pre_stop)).group(1))
    graceful_timeout = 30
    assert pod["terminationGracePeriodSeconds"] > pause + graceful_timeout


@pytest.mark.parametrize(
    "pod",
    [
        "Deployment/registry",
        "Job/registry-migrate",
        "Deployment/redis",
        "Deployment/registry-surveillance-worker",
        "Deployment/registry-log-sequencer",
        "Deployment/registry-rulesets-worker",
    ],
)
def test_k8s_pods_run_non_root_with_a_read_only_root(k8s, pod):
    spec = _pod_specs(k8s)[pod]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"] + spec.get("initContainers", []):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (pod, kind)


def test_k8s_image_uid_matches_the_pod_uid(k8s, dockerfile):
    (user,) = [i.arguments for i in dockerfile if i.keyword == "USER"]
    uid = int(user.split(":")[0])
    for name in REGISTRY_PODS:
        assert _pod_specs(k8s)[name]["securityContext"]["runAsUser"] == uid


@pytest.mark.parametrize("pod", REGISTRY_PODS)
def test_k8s_registry_pods_mount_tmp_and_keys_where_the_config_says(k8s, pod):
    spec = _pod_specs(k8s)[pod]
    keys_dir = k8s[("ConfigMap", "registry-config")]["data"]["REGISTRY_KEYS_DIR"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    keys = mounts[keys_dir]
    assert keys["readOnly"] is True
    assert volumes[keys["name"]]["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize("pod", REGISTRY_PODS)
def test_k8s_init_container_unpacks_the_keys_secret_into_the_keys_folder(k8s, pod):
    spec = _pod_specs(k8s)[pod]
    keys_dir = k8s[("ConfigMap", "registry-config")]["data"]["REGISTRY_KEYS_DIR"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    (init,) = spec["initContainers"]
    assert init["image"] == spec["containers"][0]["image"]
    command = init["command"]
    assert command[:3] == ["python", "deploy/keys_secret.py", "unpack"]
    secret_dir, target = command[3:]
    mounts = {m["mountPath"]: m for m in init["volumeMounts"]}
    assert target == keys_dir
    assert not mounts[target].get("readOnly", False)
    assert mounts[target]["name"] == next(
        m["name"] for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == keys_dir
    )
    secret = volumes[mounts[secret_dir]["name"]]["secret"]
    assert secret["secretName"] == "registry-signing-keys"
    assert secret["defaultMode"] == 0o440
    assert (DEPLOY / "keys_secret.py").is_file()


def test_k8s_deployment_has_an_empty_dir_for_prometheus_multiprocess_files(k8s):
    spec = _pod_specs(k8s)["Deployment/registry"]
    directory = k8s[("ConfigMap", "registry-config")]["data"]["PROMETHEUS_MULTIPROC_DIR"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == directory]
    assert "emptyDir" in volumes[mount["name"]]


@pytest.mark.parametrize("pod", REGISTRY_PODS)
def test_k8s_settings_come_from_the_config_map_and_the_secret(k8s, pod):
    container = _pod_specs(k8s)[pod]["containers"][0]
    sources = container["envFrom"]
    assert {"configMapRef": {"name": "registry-config"}} in sources
    assert {"secretRef": {"name": "registry-secrets"}} in sources
    config = k8s[("ConfigMap", "registry-config")]["data"]
    secret = k8s[("Secret", "registry-secrets")]["stringData"]
    assert set(config) | set(secret) >= REGISTRY_ENV
    assert {"REGISTRY_DATABASE_URL", "REGISTRY_DATA_KEY"} <= set(secret)
    assert not {"REGISTRY_DATABASE_URL", "REGISTRY_DATA_KEY"} & set(config)


def test_k8s_config_points_rate_limits_at_the_redis_service(k8s):
    storage = k8s[("ConfigMap", "registry-config")]["data"]["REGISTRY_RATELIMIT_STORAGE"]
    assert storage.startswith("redis://redis.registry.svc:6379/")
    assert ("Service", "redis") in k8s


def test_k8s_secret_holds_only_marked_placeholders_and_says_how_to_create_it(k8s):
    for name in ("registry-secrets", "registry-signing-keys"):
        for value in k8s[("Secret", name)]["stringData"].values():
            assert "CHANGE-ME-PLACEHOLDER" in value
    text = (K8S / "secret.yaml").read_text()
    assert "kubectl -n registry create secret generic registry-secrets" in text
    assert "kubectl -n registry create secret generic registry-signing-keys" in text


def test_k8s_migration_job_runs_registry_init_with_the_app_image(k8s):
    container = _container(k8s, "Job", "registry-migrate")
    assert container["command"] == ["registry", "init"]
    assert container["image"] == _container(k8s, "Deployment", "registry")["image"]
    job = k8s[("Job", "registry-migrate")]["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert job["backoffLimit"] <= 3


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_k8s_workers_are_one_replica_of_the_app_image_and_take_no_traffic(k8s, name):
    worker = k8s[("Deployment", f"registry-{name}")]
    assert worker["spec"]["replicas"] == 1
    assert worker["spec"]["strategy"]["type"] == "Recreate"
    container = _container(k8s, "Deployment", f"registry-{name}")
    assert container["command"] == WORKERS[name]
    assert container["image"] == _container(k8s, "Deployment", "registry")["image"]
    assert "ports" not in container
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert worker["spec"]["selector"]["matchLabels"].items() <= labels.items()
    web = k8s[("Service", "registry")]["spec"]["selector"]
    assert not web.items() <= labels.items()  # the web Service never routes to it
    policy = k8s[("NetworkPolicy", f"registry-{name}")]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["ingress"] == []
    assert ("HorizontalPodAutoscaler", f"registry-{name}") not in k8s


def test_k8s_service_selects_the_deployment_pods(k8s):
    service = k8s[("Service", "registry")]["spec"]
    labels = k8s[("Deployment", "registry")]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"


def test_k8s_hpa_scales_the_deployment_on_cpu(k8s):
    hpa = k8s[("HorizontalPodAutoscaler", "registry")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "registry",
    }
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert 2 <= spec["minReplicas"] < spec["maxReplicas"]


def test_k8s_pdb_keeps_a_pod_without_blocking_drains(k8s):
    pdb = k8s[("PodDisruptionBudget", "registry")]
    assert pdb["apiVersion"] == "policy/v1"
    min_replicas = k8s[("HorizontalPodAutoscaler", "registry")]["spec"]["minReplicas"]
    assert 1 <= pdb["spec"]["minAvailable"] < min_replicas
    labels = k8s[("Deployment", "registry")]["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def _ingress_paths(ingress: dict) -> dict[str, dict]:
    return {
        path["path"]: path for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]
    }


def test_k8s_ingresses_terminate_tls_and_route_to_the_service(k8s):
    ingresses = [obj for (kind, _), obj in k8s.items() if kind == "Ingress"]
    assert ingresses
    for ingress in ingresses:
        assert ingress["spec"]["tls"][0]["secretName"] == "registry-tls"
        for path in _ingress_paths(ingress).values():
            assert path["backend"]["service"] == {"name": "registry", "port": {"name": "http"}}


def test_k8s_ingress_limits_bodies_to_2_mib_and_keeps_urls_out_of_access_logs(k8s):
    for name in ("registry", "registry-rate-limited"):
        annotations = k8s[("Ingress", name)]["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "2m"
        assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
        assert annotations["nginx.ingress.kubernetes.io/enable-access-log"] == "false"


def test_k8s_ingress_rate_limits_verify_and_token_endpoints(k8s):
    ingress = k8s[("Ingress", "registry-rate-limited")]
    assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/limit-rps"]) > 0
    paths = _ingress_paths(ingress)
    assert set(paths) == {"/api/v1/verify", "/oauth/token"}
    assert all(p["pathType"] == "Exact" for p in paths.values())


def test_k8s_ingress_closes_metrics_from_outside(k8s):
    ingress = k8s[("Ingress", "registry-metrics-blocked")]
    allowed = ingress["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/whitelist-source-range"
    ]
    assert allowed == "127.0.0.1/32"
    assert set(_ingress_paths(ingress)) == {"/metrics"}


def test_k8s_network_policy_covers_the_registry_pods(k8s):
    policy = k8s[("NetworkPolicy", "registry-web")]["spec"]
    labels = k8s[("Deployment", "registry")]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["ingress"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]


# --- Dockerfile ----------------------------------------------------------------------------


def _runtime(dockerfile: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in dockerfile)
    return [i for i in dockerfile if i.stage == last]


def test_dockerfile_is_multi_stage_on_python_3_11_slim(dockerfile):
    (arg,) = [
        i for i in dockerfile if i.keyword == "ARG" and i.arguments.startswith("PYTHON_IMAGE")
    ]
    assert arg.arguments.split("=", 1)[1].startswith("python:3.11-slim")
    froms = [i.arguments for i in dockerfile if i.keyword == "FROM"]
    assert len(froms) >= 2
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)


def test_dockerfile_installs_the_package_in_the_build_stage(dockerfile):
    runs = [i.arguments for i in dockerfile if i.keyword == "RUN" and i.stage == 0]
    # at the lock file's versions, as `make install` installs them
    assert "pip install -c requirements.lock ." in runs
    copied_in_build = [i.arguments for i in dockerfile if i.keyword == "COPY" and i.stage == 0]
    assert "pyproject.toml requirements.lock ./" in copied_in_build
    copied = [i.arguments for i in _runtime(dockerfile) if i.keyword == "COPY"]
    assert "--from=build /opt/venv /opt/venv" in copied


def test_dockerfile_installs_what_weasyprint_needs(dockerfile):
    runs = " ".join(i.arguments for i in _runtime(dockerfile) if i.keyword == "RUN")
    installed = set(re.search(r"apt-get install ([^&]+)", runs).group(1).split())
    assert installed >= WEASYPRINT_PACKAGES
    assert "--no-install-recommends" in installed


def test_dockerfile_runs_as_a_numeric_non_root_user(dockerfile):
    (user,) = [i.arguments for i in _runtime(dockerfile) if i.keyword == "USER"]
    uid, gid = (int(part) for part in user.split(":"))
    assert uid > 0 and gid > 0


def test_dockerfile_exposes_8000_and_runs_gunicorn_with_our_config(dockerfile):
    runtime = _runtime(dockerfile)
    assert [i.arguments for i in runtime if i.keyword == "EXPOSE"] == ["8000"]
    (cmd,) = [i for i in runtime if i.keyword == "CMD"]
    assert cmd.exec_form() == GUNICORN_CMD
    (workdir,) = [i.arguments for i in runtime if i.keyword == "WORKDIR"]
    copies = [i.arguments.split() for i in runtime if i.keyword == "COPY"]
    assert ["deploy/gunicorn.conf.py", "deploy/keys_secret.py", "deploy/"] in copies
    assert workdir == "/app"


def test_dockerfile_ships_migrations_and_fhir_profiles_where_the_app_looks(dockerfile):
    runtime = _runtime(dockerfile)
    copies = [i.arguments.split() for i in dockerfile if i.keyword == "COPY"]
    assert ["migrations", "migrations"] in copies  # WORKDIR /app
    env = " ".join(i.arguments for i in runtime if i.keyword == "ENV")
    assert "REGISTRY_MIGRATIONS_DIR=/app/migrations" in env
    # registry/fhir/terminology.py looks two folders above itself: site-packages.
    assert ["fhir_profiles", "/opt/venv/lib/python3.11/site-packages/fhir_profiles"] in copies


def test_dockerfile_healthcheck_asks_healthz_with_python(dockerfile):
    (check,) = [i for i in _runtime(dockerfile) if i.keyword == "HEALTHCHECK"]
    command = check.exec_form()
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2]
    assert "curl" not in check.arguments


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies(dockerfile):
    patterns = [
        line
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert patterns[0] == "*"

    def included(path: str) -> bool:
        verdict = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            glob = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, glob) or path.startswith(glob + "/"):
                verdict = negated
        return verdict

    sources = [
        i.arguments.split()[:-1]
        for i in dockerfile
        if i.keyword == "COPY" and not i.arguments.startswith("--from")
    ]
    for source in (s for group in sources for s in group):
        assert included(source), source
    for secret in ("keys/registry.jwk", ".env", "deploy/.env", ".git/config", "instance/x.db"):
        assert not included(secret), secret


# --- systemd -------------------------------------------------------------------------------


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_systemd_unit_runs_gunicorn_as_a_dedicated_user():
    service = _unit(DEPLOY / "registry.service")["Service"]
    (exec_start,) = service["ExecStart"]
    assert exec_start.endswith(
        "gunicorn -c /opt/registry/deploy/gunicorn.conf.py registry.wsgi:app"
    )
    assert service["User"] == ["registry"]
    assert service["Type"] == ["notify"]
    assert service["EnvironmentFile"] == ["/etc/registry/registry.env"]


def test_systemd_unit_is_hardened():
    service = _unit(DEPLOY / "registry.service")["Service"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["ProtectHome"] == ["yes"]
    assert service["PrivateTmp"] == ["yes"]
    assert service["CapabilityBoundingSet"] == [""]
    assert "/opt/registry/venv/var/registry-instance" in service["ReadWritePaths"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize(
    "name",
    [
        "registry.service",
        "registry-surveillance-worker.service",
        "registry-rulesets-worker.service",
        "registry-log-sequencer.service",
    ],
)
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path, name):
    text = (DEPLOY / name).read_text()
    # verify insists that executables exist; everything else is checked as written.
    text = re.sub(r"/opt/registry/venv/bin/\S+", "/bin/true", text)
    unit = tmp_path / name
    unit.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [line for line in result.stderr.splitlines() if str(unit) in line]
    assert result.returncode == 0, result.stderr
    assert problems == []


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_systemd_worker_units_run_their_worker_like_the_app(name):
    worker = _unit(DEPLOY / f"registry-{name}.service")["Service"]
    app = _unit(DEPLOY / "registry.service")["Service"]
    assert worker["ExecStart"] == ["/opt/registry/venv/bin/" + " ".join(WORKERS[name])]
    for key in ("User", "Group", "EnvironmentFile", "WorkingDirectory", "NoNewPrivileges"):
        assert worker[key] == app[key], key
    for setting in app["Environment"]:
        if not setting.startswith("PROMETHEUS_MULTIPROC_DIR="):
            assert setting in worker["Environment"]
    assert worker["ProtectSystem"] == ["strict"]
    assert worker["CapabilityBoundingSet"] == [""]
    assert worker["Restart"] == ["on-failure"]
