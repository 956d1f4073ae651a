"""deploy/kubernetes/tokengate.yaml and secret.yaml: valid against the Kubernetes API schemas (kubernetes-validate,
strict: no unknown fields), and consistent with the service it deploys: every TOKENGATE_* name is
a setting `tokengate serve` knows, the probes are the service's /healthz and /readyz on the port it
listens on, the files it reads are the Secret's, and the Service, the PodDisruptionBudget and the
Deployment select the same pods."""
import os
import subprocess

import kubernetes_validate
import pytest
import yaml

MANIFESTS = [os.path.join(os.path.dirname(__file__), "..", name) for name in ("tokengate.yaml", "secret.yaml")]
BINARY = os.environ.get("TOKENGATE_BINARY", os.path.join(os.path.dirname(__file__), "..", "..", "..", ".build", "debug", "tokengate"))


def documents():
    found = []
    for manifest in MANIFESTS:
        with open(manifest) as handle:
            found += [document for document in yaml.safe_load_all(handle) if document]
    return found


def by_kind():
    return {document["kind"]: document for document in documents()}


@pytest.mark.parametrize("document", documents(), ids=lambda d: d["kind"])
def test_valid_against_the_kubernetes_schemas(document):
    kubernetes_validate.validate(document, kubernetes_validate.utils.latest_version(), strict=True)


def test_every_setting_is_one_the_service_knows():
    help_text = subprocess.run([BINARY, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    settings = by_kind()["ConfigMap"]["data"]
    unknown = [name for name in settings if name not in help_text]
    assert settings and not unknown, unknown


def test_probes_are_healthz_and_readyz_on_the_listening_port():
    kinds = by_kind()
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    port = next(p for p in container["ports"] if p["name"] == "http")
    listen = kinds["ConfigMap"]["data"]["TOKENGATE_LISTEN"]
    assert listen.endswith(f":{port['containerPort']}")
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_the_files_it_reads_are_the_secrets_and_readable_by_its_user():
    kinds = by_kind()
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    mount = pod["containers"][0]["volumeMounts"][0]
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == kinds["Secret"]["metadata"]["name"]
    settings = kinds["ConfigMap"]["data"]
    for setting in ("TOKENGATE_SIGNING_KEY_FILE", "TOKENGATE_USERS_FILE"):
        directory, name = os.path.split(settings[setting])
        assert directory == mount["mountPath"] and name in kinds["Secret"]["stringData"], setting
    # The image runs as 10001 (Dockerfile): the files must be readable by its group, and by no one else.
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["fsGroup"] == 10001
    assert volume["secret"]["defaultMode"] == 0o440


def test_the_placeholder_secret_cannot_start_a_service(tmp_path):
    """An unreplaced Secret fails safe: the service refuses its key instead of signing with it."""
    key = tmp_path / "signing.key"
    key.write_text(by_kind()["Secret"]["stringData"]["signing.key"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENGATE_")}
    env["TOKENGATE_SIGNING_KEY_FILE"] = str(key)
    result = subprocess.run([BINARY, "serve", "--listen", "127.0.0.1:0"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 78 and "TOKENGATE_SIGNING_KEY_FILE: line 1: must be at least 32 bytes" in result.stderr, result.stderr


def test_the_service_the_budget_and_the_deployment_select_the_same_pods():
    kinds = by_kind()
    labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert kinds["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert kinds["Service"]["spec"]["selector"].items() <= labels.items()
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # Rolling updates never take an instance away before its successor is ready.
    assert kinds["Deployment"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
