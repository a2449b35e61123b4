"""The cluster deployment files are valid for the tools that read them, checked offline.

deploy/docker (the image), deploy/dataflow (Flex Template), deploy/k8s (Flink Kubernetes
Operator + Beam job server + submitter Job) and deploy/prometheus/kubernetes.yml. Each check
is also run on a broken copy where that proves the validator actually rejects something.
"""

from __future__ import annotations

import argparse
import ast
import copy
import functools
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import apache_beam
import jsonschema
import kubernetes_validate
import pytest
import yaml
from apache_beam.options.pipeline_options import FlinkRunnerOptions, PipelineOptions, _BeamArgumentParser
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipelines.options import NewsflowOptions

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy/k8s"
CRD = K8S / "crds/flinkdeployments.flink.apache.org-v1.yml"
DOCKERFILE = ROOT / "deploy/docker/Dockerfile"
DOCKERIGNORE = ROOT / "deploy/docker/Dockerfile.dockerignore"
FLEX_MAIN = ROOT / "deploy/dataflow/main.py"
FLEX_METADATA = ROOT / "deploy/dataflow/metadata.json"
PROMETHEUS = ROOT / "deploy/prometheus/kubernetes.yml"
# The oldest Kubernetes API the manifests promise to fit (kubernetes-validate bundles 1.25+).
KUBERNETES_VERSION = "1.30.0"
# Only these groups have schemas in kubernetes-validate; the others are checked below.
CORE_API_VERSIONS = {"v1", "apps/v1", "batch/v1"}
# Beam's job server flags, from org.apache.beam.runners.jobsubmission.JobServerDriver and
# org.apache.beam.runners.flink.FlinkJobServerDriver (args4j: an unknown flag stops it).
JOB_SERVER_FLAGS = {
    "--job-host", "--job-port", "--artifact-port", "--expansion-port", "--artifacts-dir",
    "--clean-artifacts-per-job", "--history-size", "--flink-master", "--flink-master-url", "--flink-conf-dir",
}  # fmt: skip


# ---------------------------------------------------------------- helpers


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml" for d in _docs(p)]


def _one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for _, d in _manifests() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/k8s, found {len(found)}"
    return found[0]


def _configmaps() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("data", {}) for _, d in _manifests() if d["kind"] == "ConfigMap"}


def _pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if doc["kind"] in ("Job", "Deployment"):
        yield doc["spec"]["template"]["spec"]
    elif doc["kind"] == "FlinkDeployment":
        spec = doc["spec"]
        roles = [spec.get("jobManager", {}), spec.get("taskManager", {})]
        for template in (spec.get("podTemplate"), *(role.get("podTemplate") for role in roles)):
            if template and "spec" in template:
                yield template["spec"]


def _containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(manifest, container) for every container of every pod the manifests create."""
    for _, doc in _manifests():
        for pod in _pod_specs(doc):
            for container in pod.get("containers", []):
                yield doc, container


def _taskmanager() -> dict[str, Any]:
    return _one("FlinkDeployment")["spec"]["taskManager"]


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["containers"] if c["name"] == name)


def _worker_pool() -> dict[str, Any]:
    """The TaskManager sidecar that runs Beam's Python worker pool from our image."""
    pod = _taskmanager()["podTemplate"]["spec"]
    pools = [c for c in pod["containers"] if "--worker_pool" in c.get("args", [])]
    assert len(pools) == 1, "the TaskManager pod template needs exactly one --worker_pool sidecar"
    return pools[0]


def _expanded_argv(container: dict[str, Any]) -> list[str]:
    """command + args with $(VAR) expanded as the kubelet does, from env values and ConfigMaps."""
    configmaps = _configmaps()
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["configMapKeyRef"]
            assert ref["key"] in configmaps.get(ref["name"], {}), f"{var['name']}: no key {ref['key']} in {ref['name']}"
            env[var["name"]] = configmaps[ref["name"]][ref["key"]]

    def expand(arg: str) -> str:
        # An unknown $(VAR) stays literal in Kubernetes: here it is a KeyError, i.e. a failure.
        return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env[m.group(1)], arg)

    return [expand(a) for a in [*container.get("command", []), *container.get("args", [])]]


def _newsflow_commands() -> list[tuple[str, list[str]]]:
    """(container name, argv after `newsflow`) for every container that runs the CLI."""
    found = [(c["name"], _expanded_argv(c)) for _, c in _containers() if c.get("command", [""])[0] == "newsflow"]
    assert found, "no container in deploy/k8s runs `newsflow ...`"
    return [(name, argv[1:]) for name, argv in found]


def _newsflow_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: only exact newsflow flags; abbreviations are checked separately.
    parser = argparse.ArgumentParser(prog="newsflow run", allow_abbrev=False)
    NewsflowOptions._add_argparse_args(parser)
    return parser


def _beam_parser() -> argparse.ArgumentParser:
    """Every Beam pipeline option, the way PipelineOptions.get_all_options() builds its parser
    (one parser over all PipelineOptions subclasses) minus newsflow's own."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    classes: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        if not issubclass(cls, NewsflowOptions):
            classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)  # type: ignore[attr-defined]
    return parser


def _parse_run(argv: list[str]) -> tuple[argparse.Namespace, argparse.Namespace]:
    """(newsflow options, Beam options) of `newsflow run ARGV`; fails on any flag neither knows."""
    assert argv[:1] == ["run"], f"expected `newsflow run ...`, got {argv[:1]}"
    newsflow = _newsflow_parser()
    ours, rest = newsflow.parse_known_args(argv[1:])
    beam, unknown = _beam_parser().parse_known_args(rest)
    assert not unknown, f"flags neither newsflow's parser nor Beam's PipelineOptions accept: {unknown}"
    # The real CLI parses with argparse's default abbreviation matching: a Beam flag that is a
    # prefix of a newsflow flag would be taken by newsflow, not passed on to Beam.
    ours_flags = [s for a in newsflow._actions for s in a.option_strings]
    for token in rest:
        flag = token.split("=", 1)[0]
        if flag.startswith("--"):
            taken = [s for s in ours_flags if s.startswith(flag)]
            assert not taken, f"Beam flag {flag} abbreviates newsflow's {taken}: newsflow would take it"
    return ours, beam


def _host_port(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.rsplit(":", 1)
    return host, int(port)


def _port(container: dict[str, Any], name: str) -> int:
    return int(next(p["containerPort"] for p in container.get("ports", []) if p["name"] == name))


def _metrics_ports(container: dict[str, Any]) -> list[int]:
    return sorted(p["containerPort"] for p in container.get("ports", []) if re.fullmatch(r"metrics-\d+", p["name"]))


def _submit_options() -> tuple[argparse.Namespace, argparse.Namespace]:
    job = _one("Job", "newsflow-submit")
    return _parse_run(_expanded_argv(_container(next(_pod_specs(job)), "submit"))[1:])


# ---------------------------------------------------------------- deploy/k8s: parse and validate


def test_every_manifest_parses_and_the_kustomization_lists_them() -> None:
    manifests = _manifests()
    assert {d["kind"] for _, d in manifests} >= {"FlinkDeployment", "Deployment", "Service", "Job", "ConfigMap"}
    for path, doc in manifests:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), f"{path.name}: {doc.get('kind')} lacks a header"
        assert doc["metadata"].get("namespace", "newsflow") == "newsflow", f"{path.name}: another namespace"
    kustomization = _docs(K8S / "kustomization.yaml")[0]
    assert kustomization["namespace"] == "newsflow"
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), f"kustomization lists {resource}, which does not exist"
    names = [(d["kind"], d["metadata"]["name"]) for _, d in manifests]
    assert len(names) == len(set(names)), "two objects share a kind and name"


def test_core_objects_validate_against_the_kubernetes_openapi_schema() -> None:
    validated = set()
    for _, doc in _manifests():
        if doc["apiVersion"] in CORE_API_VERSIONS:
            # strict: unknown fields (a typo such as `comand`) fail too, as `kubectl apply` does.
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            validated.add(doc["kind"])
    assert validated >= {"Namespace", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "Job"}


def test_flink_pod_templates_are_valid_pods() -> None:
    """The CRD's pod template schema accepts almost anything; the Pod schema does not."""
    for pod in _pod_specs(_one("FlinkDeployment")):
        doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "template"}, "spec": pod}
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    "path, value",
    [
        (("spec", "template", "spec", "containers", 0, "comand"), ["newsflow"]),  # unknown field
        (("spec", "template", "spec", "containers", 0, "args"), "--streaming"),  # string, not a list
        (("spec", "backoffLimit"), "two"),
    ],
)
def test_the_kubernetes_validator_rejects_a_broken_job(path: tuple[Any, ...], value: Any) -> None:
    job = copy.deepcopy(_one("Job", "newsflow-submit"))
    _set(job, path, value)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


# ---------------------------------------------------------------- FlinkDeployment vs the operator's CRD


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


def _strict(schema: Any) -> Any:
    """The schema with unknown fields rejected, as `kubectl apply` (strict field validation)
    rejects them; fields under x-kubernetes-preserve-unknown-fields stay open."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in schema:
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf"):
        if isinstance(schema.get(key), dict | list):
            out[key] = _strict(schema[key])
    return out


@functools.cache
def _crd_validator() -> jsonschema.protocols.Validator:
    # 0.5 MB of YAML: parsed once, with libyaml where PyYAML has it.
    crd = yaml.load(CRD.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    schema["properties"] |= {
        "apiVersion": {"const": f"{crd['spec']['group']}/v1beta1"},
        "kind": {"const": crd["spec"]["names"]["kind"]},
        "metadata": {"type": "object"},
    }
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator_class.check_schema(schema)
    return validator_class(schema)


def test_the_vendored_crd_is_the_recorded_upstream_text() -> None:
    text = CRD.read_text()
    recorded = re.search(r"^# +sha256 of the text below this header: ([0-9a-f]{64})$", text, re.M)
    assert recorded, "the CRD header must record the sha256 of the upstream text"
    body = text[text.index("# Generated by Fabric8 CRDGenerator") :]
    assert hashlib.sha256(body.encode()).hexdigest() == recorded.group(1), "the vendored CRD was edited"


def test_flink_deployment_validates_against_the_operator_crd() -> None:
    deployment = _one("FlinkDeployment")
    _crd_validator().validate(deployment)
    assert "job" not in deployment["spec"], "a session cluster: the Beam job server submits the jobs"
    # The Flink runner Beam publishes for this version; the job server image must match it.
    flink = deployment["spec"]["flinkVersion"].removeprefix("v").replace("_", ".")
    assert flink in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    assert deployment["spec"]["image"].startswith(f"flink:{flink}")
    job_server = _container(next(_pod_specs(_one("Deployment", "beam-job-server"))), "job-server")
    assert job_server["image"] == f"apache/beam_flink{flink}_job_server:{apache_beam.__version__}"


@pytest.mark.parametrize(
    "path, value",
    [
        (("spec", "taskManager", "resource", "memory"), 2048),  # a string such as "2048m"
        (("spec", "taskManager", "resource", "cpu"), "one"),  # a number
        (("spec", "flinkVersion"), "v1_99"),  # not in the enum
        (("spec", "taskManager", "podTemplates"), {}),  # unknown field (typo)
        (("spec", "taskManager", "podTemplate", "spec", "containers", 1, "ports", 0, "containerPort"), "50000"),
    ],
)
def test_the_crd_validator_rejects_a_broken_flink_deployment(path: tuple[Any, ...], value: Any) -> None:
    deployment = copy.deepcopy(_one("FlinkDeployment"))
    _set(deployment, path, value)
    with pytest.raises(jsonschema.ValidationError):
        _crd_validator().validate(deployment)


# ---------------------------------------------------------------- deploy/k8s: the pieces fit together


def test_newsflow_commands_use_only_flags_newsflow_or_beam_accept() -> None:
    for name, argv in _newsflow_commands():
        ours, beam = _parse_run(argv)
        assert ours.output_dir == "", f"{name}: on a cluster the Avro files would land on a worker's disk"
        assert ours.metrics_addr == "0.0.0.0", f"{name}: /metrics must be reachable from Prometheus"
        assert ours.kafka_bootstrap_servers, f"{name}: without Kafka newsflow starts an embedded broker"


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--kafka-bootstap-servers=kafka:9092"],  # typo: neither newsflow nor Beam has it
        ["run", "--runner=PortableRunner", "--job-endpoint=beam-job-server:8099"],  # Beam spells it job_endpoint
        ["run", "--security-protocol=TLS"],  # not one of newsflow's choices
    ],
)
def test_the_flag_check_rejects_what_newsflow_run_would_reject(argv: list[str]) -> None:
    with pytest.raises((AssertionError, SystemExit)):
        _parse_run(argv)


def test_the_submitter_reaches_the_job_server_and_the_worker_pool() -> None:
    ours, beam = _submit_options()
    assert beam.runner == "PortableRunner" and beam.streaming
    assert beam.no_wait_until_finish, "a Job that waits for the stream would run as long as it does"
    service = _one("Service", "beam-job-server")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert _host_port(beam.job_endpoint) == (service["metadata"]["name"], ports["job"])
    assert _host_port(beam.artifact_endpoint) == (service["metadata"]["name"], ports["artifact"])
    # EXTERNAL: the runner in the TaskManager asks the sidecar on its own pod for SDK workers.
    assert beam.environment_type == "EXTERNAL"
    assert _host_port(beam.environment_config) == ("localhost", _port(_worker_pool(), "worker-pool"))


def test_slots_sdk_workers_and_metrics_ports_agree() -> None:
    ours, beam = _submit_options()
    taskmanager = _taskmanager()
    slots = int(_one("FlinkDeployment")["spec"]["flinkConfiguration"]["taskmanager.numberOfTaskSlots"])
    metrics = _metrics_ports(_worker_pool())
    # One SDK worker per slot, one metrics port per SDK worker, starting at --metrics-port: a
    # port nobody serves would be scraped as down (NewsflowWorkerDown).
    assert int(beam.sdk_worker_parallelism) == slots == len(metrics)
    assert metrics == list(range(ours.metrics_port, ours.metrics_port + len(metrics)))
    assert len(metrics) <= 4, "each pod serves metrics on 9464..9467 at most"
    assert beam.parallelism == taskmanager["replicas"] * slots
    annotations = taskmanager["podTemplate"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"


def test_job_server_flags_ports_and_shared_artifacts() -> None:
    deployment = _one("Deployment", "beam-job-server")
    pod = next(_pod_specs(deployment))
    server = _container(pod, "job-server")
    flags = dict(a.split("=", 1) for a in server["args"])
    assert set(flags) <= JOB_SERVER_FLAGS, f"flags the job server does not know: {set(flags) - JOB_SERVER_FLAGS}"
    flink = _one("FlinkDeployment")
    assert _host_port(flags["--flink-master"]) == (f"{flink['metadata']['name']}-rest", 8081)
    for flag, port in (("--job-port", "job"), ("--artifact-port", "artifact"), ("--expansion-port", "expansion")):
        assert int(flags[flag]) == _port(server, port)
    service = _one("Service", "beam-job-server")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()

    def claim_at(pod: dict[str, Any], container: dict[str, Any], path: str) -> str:
        mount = next(m for m in container.get("volumeMounts", []) if m["mountPath"] == path)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        return str(volume["persistentVolumeClaim"]["claimName"])

    # The TaskManagers serve the staged artifacts to the SDK workers: same volume, same path.
    artifacts = flags["--artifacts-dir"]
    tm_pod = _taskmanager()["podTemplate"]["spec"]
    claim = claim_at(pod, server, artifacts)
    assert claim_at(tm_pod, _container(tm_pod, "flink-main-container"), artifacts) == claim
    assert _one("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]
    # Checkpointing on, or the bundle finalizers that commit Kafka offsets never run.
    conf_mount = next(m for m in server["volumeMounts"] if m["mountPath"] == flags["--flink-conf-dir"])
    conf_volume = next(v for v in pod["volumes"] if v["name"] == conf_mount["name"])
    conf = yaml.safe_load(_configmaps()[conf_volume["configMap"]["name"]]["config.yaml"])
    assert conf["execution.checkpointing.interval"]


def test_the_sasl_password_file_exists_where_newsflow_reads_it() -> None:
    """--sasl-password-file is read by the submitter and by every SDK worker: both mount it."""
    ours, _ = _submit_options()
    assert ours.sasl_password_file, "the submitter shows the Secret-as-file setup"
    folder = str(PurePosixPath(ours.sasl_password_file).parent)
    job_pod = next(_pod_specs(_one("Job", "newsflow-submit")))
    tm_pod = _taskmanager()["podTemplate"]["spec"]
    for pod, container in ((job_pod, _container(job_pod, "submit")), (tm_pod, _worker_pool())):
        mount = next((m for m in container.get("volumeMounts", []) if m["mountPath"] == folder), None)
        assert mount, f"{container['name']} does not mount {folder}"
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert volume["secret"]["secretName"] == "newsflow-kafka-sasl"


def test_pod_monitor_scrapes_the_worker_pool_ports() -> None:
    monitor = _one("PodMonitor")
    labels = _taskmanager()["podTemplate"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    names = {p["name"] for p in _worker_pool()["ports"]}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} == {n for n in names if n.startswith("metrics")}
    assert labels[monitor["spec"]["jobLabel"]] == "newsflow", 'the rules select job="newsflow"'


# ---------------------------------------------------------------- deploy/docker


def _dockerfile() -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(DOCKERFILE.read_bytes()))


def _instructions(name: str) -> list[str]:
    return [i["value"] for i in _dockerfile().structure if i["instruction"] == name]


def _ignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line.lstrip("/").rstrip("/") for line in lines if line and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus **) as an anchored regex."""
    out = ""
    for part in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return re.compile(out)


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Whether the build context leaves out ``relative``: it or a parent matches (last match wins)."""
    parts = PurePosixPath(relative).parts
    paths = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(p) for p in paths):
            ignored = not negate
    return ignored


def test_the_dockerignore_matcher_bites() -> None:
    patterns = _ignore_patterns()
    assert _ignored(".venv/bin/python", patterns) and _ignored("pipelines/__pycache__/x.pyc", patterns)
    assert _ignored("tests/data/ner_gold.jsonl", patterns) and _ignored("out", patterns)
    assert not _ignored("pipelines/cli.py", patterns) and not _ignored("schemas", patterns)


def _copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY/ADD from the build context (not --from a stage)."""
    found = []
    for value in _instructions("COPY") + _instructions("ADD"):
        words = value.split()
        if any(w.startswith("--from=") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        found.append((words[:-1], words[-1]))
    return found


def _image_path(path: str) -> Path:
    """The build-context file that ends up at ``path`` in the image, through COPY and WORKDIR."""
    workdir = PurePosixPath("/")
    mapping: list[tuple[PurePosixPath, str]] = []
    for instruction in _dockerfile().structure:
        if instruction["instruction"] == "WORKDIR":
            workdir = workdir / instruction["value"]
        elif instruction["instruction"] == "COPY" and "--from=" not in instruction["value"]:
            *sources, dest = instruction["value"].split()
            for source in sources:
                target = workdir / dest
                mapping.append((target / source if dest.endswith("/") else target, source))
    wanted = PurePosixPath(path)
    for target, source in mapping:
        if wanted == target or target in wanted.parents:
            return ROOT / source / wanted.relative_to(target)
    raise AssertionError(f"{path} is not copied into the image")


def test_dockerfile_copies_only_existing_unignored_files() -> None:
    patterns = _ignore_patterns()
    copied = set()
    for sources, _ in _copies():
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the build context"
            assert not _ignored(source, patterns), f"COPY {source}: excluded by {DOCKERIGNORE.name}"
            copied.add(PurePosixPath(source).parts[0])
    # What `pip install -e` needs (pyproject's readme too) and where pipelines looks for schemas.
    pyproject = _pyproject()
    assert copied >= {"pyproject.toml", pyproject["project"]["readme"], "pipelines", "schemas"}


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _model_package() -> str:
    """MODEL_PACKAGE of pipelines/nlp/entities.py, read without importing spaCy."""
    tree = ast.parse((ROOT / "pipelines/nlp/entities.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MODEL_PACKAGE" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise AssertionError("pipelines/nlp/entities.py has no MODEL_PACKAGE")


def test_dockerfile_bakes_the_model_and_keeps_the_sdk_harness_entrypoint() -> None:
    parser = _dockerfile()
    # Same Beam on the workers as in the submitter, or the portable job fails at run time.
    assert parser.baseimage == f"apache/beam_python3.11_sdk:{apache_beam.__version__}"
    assert json.loads(_instructions("ENTRYPOINT")[-1]) == ["/opt/apache/beam/boot"]
    runs = _instructions("RUN")
    install = next(i for i, r in enumerate(runs) if re.search(r"pip install .*-e /opt/newsflow\b", r))
    model = _model_package()
    load = next(i for i, r in enumerate(runs) if f"import {model}" in r and f"{model}.load()" in r)
    assert install < load, "the model is loaded once at build time, after the package is installed"
    # pip installs the model because pyproject.toml depends on its distribution.
    dependencies = {canonicalize_name(Requirement(d).name) for d in _pyproject()["project"]["dependencies"]}
    assert canonicalize_name(model) in dependencies
    assert _image_path(parser.envs["NEWSFLOW_SCHEMA_DIR"]).resolve() == (ROOT / "schemas").resolve()


def test_flex_template_file_in_the_image_is_deploy_dataflow_main() -> None:
    parser = _dockerfile()
    assert _image_path(parser.envs["FLEX_TEMPLATE_PYTHON_PY_FILE"]).resolve() == FLEX_MAIN.resolve()
    # The launcher binary comes from Google's launcher image for the same Python (3.11).
    launcher_stage = next(i for i in parser.parent_images if "template-launcher-base" in i)
    assert "/python311-template-launcher-base" in launcher_stage and "python3.11_sdk" in parser.baseimage
    launcher = "/opt/google/dataflow/python_template_launcher"
    assert f"--from=launcher {launcher} {launcher}" in _instructions("COPY")


# ---------------------------------------------------------------- deploy/dataflow

# One valid and one invalid value per template parameter.
SAMPLES = {
    "kafka_bootstrap_servers": ("broker-1.internal:9092,10.0.0.7:9093", "broker-1.internal"),
    "topics": ("news.raw,news.raw-eu", "news raw"),
    "group_id": ("newsflow", "news flow"),
    "enriched_topic": ("news.enriched", "news/enriched"),
    "facts_topic": ("news.facts", ""),
    "deadletter_topic": ("news.deadletter", "dead letters"),
    "batch_size": ("16", "0"),
    "max_poll_records": ("64", "-1"),
    "kafka_io": ("java", "jvm"),
    "security_protocol": ("SASL_SSL", "TLS"),
    "sasl_mechanism": ("SCRAM-SHA-512", "GSSAPI"),
    "sasl_username": ("newsflow", "news flow"),
    "sasl_password_file": ("/etc/newsflow/kafka/sasl-password", "password.txt"),
}


def _metadata() -> dict[str, Any]:
    return dict(json.loads(FLEX_METADATA.read_text()))


def test_flex_template_metadata_has_the_required_fields() -> None:
    metadata = _metadata()
    assert metadata["name"] and metadata["description"] and metadata["streaming"] is True
    if "defaultStreamingMode" in metadata:  # only valid when both modes are supported
        assert metadata["supportsAtLeastOnce"] and metadata["supportsExactlyOnce"]
        assert metadata["defaultStreamingMode"] in ("AT_LEAST_ONCE", "EXACTLY_ONCE")
    names = [p["name"] for p in metadata["parameters"]]
    assert sorted(names) == sorted(SAMPLES) and len(names) == len(set(names))
    for p in metadata["parameters"]:
        assert p["label"] and p["helpText"] and isinstance(p.get("isOptional", False), bool), p["name"]
    assert [p["name"] for p in metadata["parameters"] if not p.get("isOptional")] == ["kafka_bootstrap_servers"]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_flex_template_parameter_regexes_and_newsflow_flags(name: str) -> None:
    parameter = next(p for p in _metadata()["parameters"] if p["name"] == name)
    good, bad = SAMPLES[name]
    regexes = [re.compile(r) for r in parameter["regexes"]]
    assert regexes and all(r.fullmatch(good) for r in regexes), f"{good!r} fails {name}'s regexes"
    assert not all(r.fullmatch(bad) for r in regexes), f"{bad!r} passes {name}'s regexes"
    # The launcher passes --name=value; newsflow must take it (not leave it to Beam).
    ours, rest = _newsflow_parser().parse_known_args([f"--{name}={good}"])
    assert rest == [], f"newsflow does not accept --{name}"
    assert str(getattr(ours, name)) == good
    beam_dests = {a.dest for a in _beam_parser()._actions}
    assert name not in beam_dests, f"--{name} is also a Beam option"


def test_flex_main_runs_newsflow_run_with_cluster_defaults() -> None:
    # `newsflow run --help` imports neither Beam's runners nor spaCy: cheap.
    result = subprocess.run([sys.executable, str(FLEX_MAIN), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: newsflow run" in result.stdout
    tree = ast.parse(FLEX_MAIN.read_text())
    defaults = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "CLUSTER_DEFAULTS" for t in n.targets)
    )
    ours, beam = _parse_run(["run", *defaults])
    assert ours.output_dir == "" and ours.metrics_addr == "0.0.0.0"
    assert beam.no_wait_until_finish, "the Flex Template launcher must exit once the job is submitted"


# ---------------------------------------------------------------- deploy/prometheus/kubernetes.yml


def _promtool() -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus: apt-get install prometheus"
    return promtool


def _promtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), "check", "config", str(path)], capture_output=True, text=True)


def _promtool_has_kubernetes_sd(tmp_path: Path) -> bool:
    probe = tmp_path / "probe.yml"
    probe.write_text(
        yaml.safe_dump({"scrape_configs": [{"job_name": "p", "kubernetes_sd_configs": [{"role": "pod"}]}]})
    )
    return _promtool_check(probe).returncode == 0


def _prometheus() -> dict[str, Any]:
    return dict(yaml.safe_load(PROMETHEUS.read_text()))


def test_prometheus_kubernetes_config_checks(tmp_path: Path) -> None:
    if _promtool_has_kubernetes_sd(tmp_path):
        result = _promtool_check(PROMETHEUS)
        assert result.returncode == 0, result.stdout + result.stderr
        return
    # Debian builds promtool without Kubernetes service discovery. Check everything else with
    # it (rules, relabelling, the GCE job) on a copy whose pod discovery is a static target,
    # and the kubernetes_sd_configs block itself below.
    config = _prometheus()
    config["rule_files"] = [str((PROMETHEUS.parent / r).resolve()) for r in config["rule_files"]]
    for job in config["scrape_configs"]:
        for sd in job.pop("kubernetes_sd_configs", []):
            assert set(sd) <= {"role", "namespaces", "selectors", "api_server", "kubeconfig_file"}, sd
            assert sd["role"] in {"pod", "endpoints", "endpointslice", "service", "node", "ingress"}
            assert all(isinstance(n, str) for n in sd.get("namespaces", {}).get("names", []))
            job["static_configs"] = [{"targets": ["10.0.0.1:9464"]}]
    copy_path = tmp_path / "kubernetes.yml"
    copy_path.write_text(yaml.safe_dump(config))
    result = _promtool_check(copy_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def _relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus relabelling (keep, drop, replace) of one target; None when it is dropped."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace")
        value = rule.get("separator", ";").join(labels.get(s, "") for s in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if action == "keep" and not match or action == "drop" and match:
            return None
        if action == "replace" and match:
            replacement = re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", rule.get("replacement", "$1"))
            labels[rule["target_label"]] = match.expand(replacement)
    return labels


def _job(name: str) -> dict[str, Any]:
    return next(j for j in _prometheus()["scrape_configs"] if j["job_name"] == name)


def test_pod_scrape_keeps_exactly_the_worker_metrics_ports() -> None:
    """The targets Kubernetes discovery makes from the TaskManager pod template (one per
    declared port) go through the job's relabelling: only the metrics-* ports survive."""
    template = _taskmanager()["podTemplate"]
    job = _job("newsflow")
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["newsflow"]
    ports = [(c["name"], p) for c in template["spec"]["containers"] for p in c.get("ports", [])]
    ports.append(("flink-main-container", {"name": "rpc", "containerPort": 6122}))  # Flink's own port
    kept = []
    for container, port in ports:
        labels = {
            "__address__": f"10.0.0.7:{port['containerPort']}",
            "__meta_kubernetes_namespace": "newsflow",
            "__meta_kubernetes_pod_name": "newsflow-flink-taskmanager-1-1",
            "__meta_kubernetes_pod_node_name": "node-a",
            "__meta_kubernetes_pod_phase": "Running",
            "__meta_kubernetes_pod_container_name": container,
            "__meta_kubernetes_pod_container_port_name": port["name"],
            "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
        }
        for key, value in template["metadata"].get("annotations", {}).items():
            labels["__meta_kubernetes_pod_annotation_" + re.sub(r"[^A-Za-z0-9_]", "_", key)] = value
        result = _relabel(labels, job["relabel_configs"])
        if result is not None:
            kept.append(result)
    assert sorted(int(t["__address__"].rsplit(":", 1)[1]) for t in kept) == _metrics_ports(_worker_pool())
    assert len({t["instance"] for t in kept}) == len(kept)
    assert all(t["namespace"] == "newsflow" and t["container"] == _worker_pool()["name"] for t in kept)
    # An unannotated pod is not scraped at all.
    unannotated = {"__meta_kubernetes_pod_container_port_name": "metrics-0"}
    assert _relabel(unannotated, job["relabel_configs"]) is None


def test_dataflow_scrape_covers_the_worker_ports_as_job_newsflow() -> None:
    job = _job("newsflow-dataflow")
    default_port = _newsflow_parser().parse_args([]).metrics_port
    ports = sorted(sd["port"] for sd in job["gce_sd_configs"])
    assert ports == list(range(default_port, default_port + len(ports))) and len(ports) <= 4
    assert all("dataflow_job_name" in sd["filter"] for sd in job["gce_sd_configs"])
    labels = {
        "__address__": "10.1.2.3:9465",
        "__meta_gce_instance_name": "newsflow-0611-harness-x1b2",
        "__meta_gce_zone": "https://www.googleapis.com/compute/v1/projects/p/zones/europe-west1-b",
    }
    result = _relabel(labels, job["relabel_configs"])
    assert result is not None
    assert result["job"] == "newsflow", 'the rules and alerts select job="newsflow"'
    assert result["instance"] == "newsflow-0611-harness-x1b2:9465" and result["zone"] == "europe-west1-b"
