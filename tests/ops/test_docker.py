"""The Docker image, compose file and monitoring config agree with each other and with the code.

No Docker engine runs here, so these read the files: every part is present, ports line up between
processes, Prometheus and the dashboard ask only for metrics the code exports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from prometheus_client import REGISTRY

DOCKER = Path(__file__).resolve().parents[2] / "docker"
APP_SERVICES = {"http", "grpc", "worker", "beat"}


def interpolate_defaults(text: str) -> str:
    """What compose does with no variables set: ``${NAME:-default}`` becomes ``default``."""
    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", text)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(interpolate_defaults((DOCKER / "compose.yaml").read_text()))


@pytest.fixture(scope="module")
def prometheus() -> dict:
    return yaml.safe_load((DOCKER / "prometheus.yml").read_text())


def scrape_target(prometheus: dict, job: str) -> str:
    [job_config] = [j for j in prometheus["scrape_configs"] if j["job_name"] == job]
    [target] = job_config["static_configs"][0]["targets"]
    return target


def test_every_part_is_a_service(compose):
    assert set(compose["services"]) == {
        "db",
        "redis",
        "migrate",
        "http",
        "proxy",
        "admin",
        "grpc",
        "worker",
        "beat",
        "prometheus",
        "grafana",
    }
    assert compose["services"]["db"]["image"] == "postgres:15"


def test_app_services_wait_for_migrations_and_share_one_image(compose):
    services = compose["services"]
    # Roles first, then migrate as the owner and grant (tests/ops/test_db_roles.py checks the roles).
    assert services["migrate"]["command"] == [
        "sh",
        "-c",
        "python manage.py db_roles create && python manage.py db_roles migrate",
    ]
    assert services["migrate"]["restart"] == "no"
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == services["migrate"]["image"] == "balance:local"
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379/")
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
        assert env["DJANGO_DEBUG"] == "0"


def test_http_is_gunicorn_on_3002_and_scraped_there(compose, prometheus):
    http = compose["services"]["http"]
    assert http["command"][:3] == ["gunicorn", "-c", "balance_project/gunicorn.conf.py"]
    module, attr = http["command"][3].split(":")
    assert callable(getattr(__import__(module, fromlist=[attr]), attr))
    assert http["environment"]["HTTP_BIND"] == "0.0.0.0:3002"
    assert "ports" not in http and http["expose"] == ["3002"]  # reached through the proxy only
    host, port = scrape_target(prometheus, "balance-http").split(":")
    assert (host, port) == ("http", "3002")
    # Prometheus sends Host: http:3002; Django must accept it or /metrics answers 400.
    assert host in http["environment"]["DJANGO_ALLOWED_HOSTS"].split(",")


def test_the_public_port_is_a_buffering_proxy_with_the_service_limits(compose):
    proxy = compose["services"]["proxy"]
    assert proxy["image"].startswith("nginx:") and "127.0.0.1:3002:3002" in proxy["ports"]
    assert proxy["depends_on"]["http"]["condition"] == "service_healthy"
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    conf = (DOCKER / "nginx.conf").read_text()
    directives = dict(re.findall(r"^\s*(\w+) ([^;{]+);", conf, flags=re.MULTILINE))
    assert directives["client_max_body_size"] == f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024}k"
    assert directives["proxy_request_buffering"] == "on"
    assert int(directives["client_body_timeout"].rstrip("s")) <= 10
    assert int(directives["client_header_timeout"].rstrip("s")) <= 10
    assert directives["server"] == "http:3002"
    assert re.search(r"location = /metrics \{ return 404; \}", conf)


def test_compose_has_no_default_keys():
    text = (DOCKER / "compose.yaml").read_text()
    for name in ("DJANGO_SECRET_KEY", "LEDGER_HMAC_KEY"):
        assert re.search(rf"{name}: \$\{{{name}:\?", text), name


def test_grpc_sidecar_and_its_metrics_port(compose, prometheus):
    grpc = compose["services"]["grpc"]
    assert grpc["command"] == ["python", "manage.py", "grpcserver"]
    assert grpc["environment"]["GRPC_BIND"] == "0.0.0.0:50051"
    assert "127.0.0.1:50051:50051" in grpc["ports"]
    metrics_port = grpc["environment"]["GRPC_METRICS_PORT"]
    assert int(metrics_port) == settings.GRPC_METRICS_PORT
    assert scrape_target(prometheus, "balance-grpc") == f"grpc:{metrics_port}"


def test_one_worker_with_threads_and_one_separate_beat(compose, prometheus):
    worker, beat = compose["services"]["worker"], compose["services"]["beat"]
    assert worker["command"][:4] == ["celery", "-A", "balance_project", "worker"]
    assert "-B" not in worker["command"] and "--beat" not in worker["command"]
    assert worker["command"][worker["command"].index("--pool") + 1] == "threads"
    assert int(worker["environment"]["WORKER_METRICS_PORT"]) == settings.WORKER_METRICS_PORT
    assert worker["environment"]["WORKER_METRICS_ADDR"] == "0.0.0.0"
    assert scrape_target(prometheus, "balance-worker") == f"worker:{worker['environment']['WORKER_METRICS_PORT']}"
    assert beat["command"][:4] == ["celery", "-A", "balance_project", "beat"]
    assert beat["command"][beat["command"].index("--scheduler") + 1] == settings.CELERY_BEAT_SCHEDULER
    assert "deploy" not in beat  # never replicated: two beats send every job twice


def test_mounted_config_files_exist(compose):
    for name in ("prometheus", "grafana"):
        for volume in compose["services"][name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).exists(), volume


def test_dockerfile_installs_the_lock_collects_static_and_runs_as_non_root():
    lines = [
        line.strip()
        for line in (DOCKER / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    assert any("pip install -r requirements.lock" in line for line in lines)
    assert any("collectstatic --noinput" in line for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert lines.index(f"USER {users[-1]}") > max(i for i, line in enumerate(lines) if line.startswith("RUN "))
    cmd = json.loads(next(line for line in lines if line.startswith("CMD ")).removeprefix("CMD "))
    assert cmd == ["gunicorn", "-c", "balance_project/gunicorn.conf.py", "balance_project.wsgi_static:application"]


def exported_metric_names() -> set[str]:
    """Every sample name the service's processes can export."""
    from django_prometheus.middleware import Metrics

    import balance_project.grpc.metrics  # noqa: F401
    import reservations.metrics  # noqa: F401
    from balance_project.db_metrics import FAMILIES

    Metrics.get_instance()
    # The registry indexes every sample name its collectors declare (_total, _bucket, ... included),
    # scrape-time collectors too (ledger/apps.py registers the ledger's), without collecting.
    return set(REGISTRY._names_to_collectors) | set(FAMILIES) | {"up"}


def queried_metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:balance|django_http)_[a-z_]+|up)\b(?=\s*[{\[)]|\s*$|\s*[=><])", expr))


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DOCKER / "grafana/dashboards/balance.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((DOCKER / "prometheus-rules.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_dashboard_and_alerts_query_only_exported_metrics(source):
    exprs = dashboard_exprs() if source == "dashboard" else rule_exprs()
    queried = set().union(*(queried_metric_names(e) for e in exprs))
    assert queried, "no metric found in the expressions: the pattern is wrong"
    assert queried - exported_metric_names() == set()


def test_dashboard_covers_what_on_call_needs():
    text = "\n".join(dashboard_exprs())
    for needed in (
        "balance_grpc_server_handling_seconds_bucket",
        "balance_grpc_server_handled_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "django_http_responses_total_by_status_view_method_total",
        'outcome="expired"',
        "balance_ledger_integrity_ok",
        "balance_system_account_balance",
        "histogram_quantile(0.99",
        "histogram_quantile(0.5",
    ):
        assert needed in text, needed


def test_grafana_provisioning_points_at_the_dashboard_and_datasource(compose):
    datasource = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    [source] = datasource["datasources"]
    assert source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/balance.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{path}:ro" in compose["services"]["grafana"]["volumes"]
    dashboard = json.loads((DOCKER / "grafana/dashboards/balance.json").read_text())
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    uids |= {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids == {source["uid"]}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_admin_is_its_own_service_and_not_on_the_api_port(compose):
    admin, http = compose["services"]["admin"], compose["services"]["http"]
    assert admin["command"][-1] == "balance_project.wsgi_admin:application"
    assert admin["ports"] == ["127.0.0.1:3003:3003"] and admin["environment"]["HTTP_BIND"] == "0.0.0.0:3003"
    assert http["environment"]["ADMIN_ON_API_PORT"] == "0"
