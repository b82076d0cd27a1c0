"""The deployment files agree with each other and with the code.

Docker cannot run on the development machines, so these checks are what keeps
`docker-compose.yml` and the `Dockerfile` honest: valid YAML, the Procfile's commands
word for word, and alert rules that only name metrics Slotguard exports.
"""

from __future__ import annotations

import json
import os
import re

import yaml

from core import PROJECT_ROOT, prom


def read(name: str) -> str:
    with open(os.path.join(PROJECT_ROOT, name), encoding="utf-8") as handle:
        return handle.read()


def procfile() -> dict[str, str]:
    entries = {}
    for line in read("Procfile").splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def test_compose_runs_the_procfiles_commands():
    compose = yaml.safe_load(read("docker-compose.yml"))
    services = compose["services"]
    assert {"web", "worker", "scheduler", "postgres", "redis"} <= set(services)
    for name, command in procfile().items():
        shell, flag, script = services[name]["command"]
        # `$$` is compose's escape for a `$` the container's shell expands.
        assert (shell, flag, script.replace("$$", "$")) == ("sh", "-c", command), name


def test_the_image_starts_the_web_process_by_default():
    cmd = re.search(r"^CMD (.+)$", read("Dockerfile"), re.MULTILINE).group(1)
    assert json.loads(cmd) == ["sh", "-c", procfile()["web"]]


def test_every_app_service_migrates_first_and_shares_the_metric_files():
    services = yaml.safe_load(read("docker-compose.yml"))["services"]
    assert services["migrate"]["command"][-1] == "flask --app wsgi db upgrade"
    for name in ("web", "worker", "scheduler"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("web", "worker"):
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] in services[name]["volumes"][0]


def test_alert_rules_name_only_exported_metrics():
    rules = yaml.safe_load(read("deploy/prometheus-alerts.yml"))["groups"][0]["rules"]
    exported = {"slotguard_rq_jobs", "slotguard_rq_redis_up"}
    for value in vars(prom).values():
        name = getattr(value, "_name", None)
        if isinstance(name, str) and name.startswith("slotguard_"):
            exported.add(name + ("_total" if value._type == "counter" else ""))
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule)
        for used in re.findall(r"slotguard_[a-z_]+", rule["expr"]):
            base = re.sub(r"_(bucket|count|sum)$", "", used)
            assert used in exported or base in exported, (rule["alert"], used)


SECRET_NAMES = ("SECRET_KEY", "RETELL_API_KEY", "CALCOM_API_KEY", "CALCOM_WEBHOOK_SECRET",
                "METRICS_TOKEN", "SLACK_WEBHOOK_URL", "SMTP_PASSWORD", "PAGERDUTY_ROUTING_KEY")


def test_the_image_leaves_out_secrets_local_state_and_caches():
    ignored = {line.strip().rstrip("/") for line in read(".dockerignore").splitlines()
               if line.strip() and not line.startswith("#")}
    for must in (".env", ".venv", "instance", ".git", "**/__pycache__", ".pytest_cache",
                 ".hypothesis", "tests/e2e/artifacts", "bench/results"):
        assert must in ignored, must


def test_the_dockerfile_bakes_no_secret():
    # ENV/ARG values end up in the image's history; secrets come from the environment at run time.
    dockerfile = read("Dockerfile")
    for name in SECRET_NAMES:
        assert not re.search(rf"^\s*(ENV|ARG)\b[^\n]*\b{name}\b", dockerfile, re.MULTILINE), name
        assert not re.search(rf"^\s+{name}=", dockerfile, re.MULTILINE), name  # continuation lines of ENV


def test_env_example_lists_every_variable_slotguard_reads():
    """Every name `core/config.py`, `gunicorn.conf.py` and the embedded server read,
    and every variable the compose file substitutes, is in `.env.example` (set or commented)."""
    listed = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", read(".env.example"), re.MULTILINE))
    read_names = set(re.findall(r"""(?:env_str|env_int|env_bool|_env_seconds)\("([A-Z0-9_]+)\"""", read("core/config.py")))
    read_names |= set(re.findall(r"""environ(?:\.get\(|\[)["']([A-Z0-9_]+)["']""",
                                 read("gunicorn.conf.py") + read("core/embedded_redis.py")))
    read_names |= set(re.findall(r"\$\{([A-Z0-9_]+)", read("docker-compose.yml")))
    read_names |= {"PROMETHEUS_MULTIPROC_DIR", "CALCOM_EMULATOR_PORT"}
    assert len(read_names) > 90
    assert read_names - listed == set()
    assert listed - read_names == set()  # nothing stale either


def test_compose_passes_the_metrics_token_and_the_proxy_count_to_the_app():
    services = yaml.safe_load(read("docker-compose.yml"))["services"]
    for name in ("web", "worker", "scheduler"):
        environment = services[name]["environment"]
        assert environment["METRICS_TOKEN"] == "${METRICS_TOKEN:-}", name
        assert environment["TRUSTED_PROXY_COUNT"] == "${TRUSTED_PROXY_COUNT:-0}", name


def test_documentation_links_stay_inside_the_repository():
    """A clone has no ../shared or /work: every relative link in the docs resolves to a file here."""
    for name in ("README.md", "docs/DESIGN.md"):
        text = read(name)
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            assert not target.startswith(("..", "/")), (name, target)
            assert os.path.exists(os.path.join(PROJECT_ROOT, os.path.dirname(name), target)), (name, target)
        assert "/work/" not in text and "../shared" not in text, name
