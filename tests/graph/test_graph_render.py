"""``dynconform graph render --target k8s``: DynamoGraphDeployments from graphs."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynconform.cli import main
from dynconform.graph import RenderOptions, component_kind, parse_graph, render_dgd

SAMPLES = resources.files("dynconform.contracts") / "samples" / "ai-dynamo-1.6.1"
SECRET = "s3cr3t-Value-that-must-not-leak"

GRAPH = (Path(__file__).parent / "shop.yaml").read_text(encoding="utf-8")


def _render(text: str = GRAPH, **options: Any) -> dict[str, Any]:
    rendering = render_dgd(parse_graph(text, "g.yaml"), RenderOptions(**options))
    assert rendering.manifest is not None, [p.format("g.yaml") for p in rendering.problems]
    return rendering.manifest


def _container(manifest: dict[str, Any], index: int) -> dict[str, Any]:
    container: dict[str, Any] = manifest["spec"]["components"][index]["podTemplate"]["spec"][
        "containers"
    ][0]
    return container


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["graph", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_v1beta1_components_with_pod_templates() -> None:
    manifest = _render(image="img:1")
    assert manifest["apiVersion"] == "nvidia.com/v1beta1"
    assert manifest["kind"] == "DynamoGraphDeployment"
    assert manifest["metadata"] == {"name": "shop"}
    assert list(manifest["spec"]) == ["components"]
    components = manifest["spec"]["components"]
    assert [(c["name"], c.get("type"), c["replicas"]) for c in components] == [
        ("http-ingress", "frontend", 2),
        ("prefill-worker", "prefill", 0),
        ("planner", "planner", 1),
    ]
    frontend = _container(manifest, 0)
    assert frontend == {
        "name": "main",
        "image": "nvcr.io/nvidia/ai-dynamo/dynamo-frontend:1.6.1",
        "command": ["dynamo", "serve"],
        "args": ["in=http", "out=dyn", "--port", "8000", "--router-mode", "kv", "--no-kv-events"],
        "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}},
    }
    planner = _container(manifest, 2)
    assert planner["image"] == "img:1"
    assert planner["args"] == ["dynamo.planner:Planner"]
    assert planner["envFrom"] == [{"secretRef": {"name": "hf-token-secret"}}]


def test_worker_arguments_resources_and_node_selector() -> None:
    manifest = _render(image="img:1")
    worker = _container(manifest, 1)
    assert worker["image"] == "img:1"
    assert worker["command"] == ["python3", "-m", "dynamo.vllm"]
    assert worker["args"] == [
        "--kv-transfer-config",
        '{"kv_connector":"NixlConnector"}',
        "--model",
        "Qwen/Qwen3-0.6B",
        "--disaggregation-mode",
        "prefill",
        "--stop",
        "a",
        "b",
    ]
    assert worker["resources"] == {
        "limits": {"nvidia.com/gpu": "1"},
        "requests": {"memory": "1000000000"},
    }
    assert worker["envFrom"] == [
        {"secretRef": {"name": "hf-token-secret"}},
        {"secretRef": {"name": "extra-env"}},
    ]
    spec = manifest["spec"]["components"][1]["podTemplate"]["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "H100"}


def test_secrets_become_secret_key_refs_and_dollars_are_escaped() -> None:
    env = _container(_render(image="img:1"), 1)["env"]
    ref = {"secretKeyRef": {"name": "shop-secrets", "key": "DB_PASSWORD"}}
    hf = {"secretKeyRef": {"name": "shop-secrets", "key": "HF_TOKEN"}}
    assert env == [
        # variables carrying a secret into a longer value come first, so that $(...) resolves
        {"name": "DYN_SECRET_DB_PASSWORD", "valueFrom": ref},
        {"name": "DYN_SECRET_HF_TOKEN", "valueFrom": hf},
        {"name": "CUDA_VISIBLE_DEVICES", "value": "0"},
        {"name": "HF_TOKEN", "valueFrom": hf},
        {"name": "DB_URL", "value": "postgres://app:$(DYN_SECRET_DB_PASSWORD)@db/$$(whoami)"},
        {"name": "RETRIES", "value": "3"},
        {"name": "VERBOSE", "value": "true"},
        {
            "name": "DYN_DEPLOYMENT_CONFIG",
            "value": '{"prefill_worker": {"token": "$(DYN_SECRET_HF_TOKEN)"}}',
        },
    ]


def test_secret_name_option() -> None:
    env = _container(_render(image="i", secret_name="team.creds"), 1)["env"]
    assert env[0]["valueFrom"] == {"secretKeyRef": {"name": "team.creds", "key": "DB_PASSWORD"}}
    with pytest.raises(ValueError, match="cannot name a Kubernetes Secret"):
        _render(image="i", secret_name="Team_Creds")


def test_v1alpha1_services_with_extra_pod_spec() -> None:
    manifest = _render(image="img:1", api_version="v1alpha1")
    assert manifest["apiVersion"] == "nvidia.com/v1alpha1"
    services = manifest["spec"]["services"]
    assert list(services) == ["http-ingress", "prefill-worker", "planner"]
    assert services["http-ingress"] == {
        "componentType": "frontend",
        "replicas": 2,
        "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}},
        "extraPodSpec": {
            "mainContainer": {
                "image": "nvcr.io/nvidia/ai-dynamo/dynamo-frontend:1.6.1",
                "command": ["dynamo", "serve"],
                "args": [
                    "in=http",
                    "out=dyn",
                    "--port",
                    "8000",
                    "--router-mode",
                    "kv",
                    "--no-kv-events",
                ],
            }
        },
    }
    worker = services["prefill-worker"]
    assert (worker["componentType"], worker["subComponentType"]) == ("worker", "prefill")
    assert "envFromSecret" not in worker  # two of them: the main container reads both
    assert worker["extraPodSpec"]["mainContainer"]["envFrom"][1] == {
        "secretRef": {"name": "extra-env"}
    }
    assert worker["extraPodSpec"]["nodeSelector"] == {"nvidia.com/gpu.product": "H100"}
    assert worker["resources"] == {"requests": {"memory": "1000000000"}, "limits": {"gpu": "1"}}
    assert worker["envs"][3] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "shop-secrets", "key": "HF_TOKEN"}},
    }
    planner = services["planner"]
    assert planner["componentType"] == "planner"
    assert planner["envFromSecret"] == "hf-token-secret"


@pytest.mark.parametrize(
    ("run_config", "kind"),
    [
        ({"input": "http", "output": "dyn"}, "frontend"),
        ({"args": ["input=http", "output=dyn"]}, "frontend"),
        ({"args": {"input": "dyn://a.b.c", "output": "sglang"}}, "worker"),
        ({"input": "text", "output": "llamacpp"}, "worker"),
        ({"output": "trtllm", "options": {"disaggregation_mode": "decode"}}, "decode"),
        ({"output": "trtllm", "options": {"disaggregation_mode": "both"}}, "worker"),
        ({"input": "dyn://a.b.c", "output": "dyn"}, None),
        ({}, None),
    ],
)
def test_component_kinds(run_config: dict[str, Any], kind: str | None) -> None:
    assert component_kind({"name": "x", "run_config": run_config}) == kind


@pytest.mark.parametrize(
    ("component", "kind"),
    [
        ({"cmd": ["python3", "-m", "dynamo.frontend"]}, "frontend"),
        ({"cmd": ["python3"], "args": ["-m", "dynamo.planner"]}, "planner"),
        ({"py_class": "dynamo.planner:Planner"}, "planner"),
        ({"cmd": ["python3", "-m", "dynamo.sglang"]}, "worker"),
        (
            {"cmd": ["python3", "-m", "dynamo.vllm"], "args": ["--disaggregation-mode=decode"]},
            "decode",
        ),
        ({"cmd": ["python3", "-m", "dynamo.vllm"], "args": ["--disaggregation-mode"]}, "worker"),
        ({"cmd": ["python3", "-m", "my.module"]}, None),
        ({"py_class": "a.b.c:Frontend"}, None),
    ],
)
def test_component_kinds_from_the_module_a_component_runs(
    component: dict[str, Any], kind: str | None
) -> None:
    assert component_kind({"name": "x", **component}) == kind


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    image: nvcr.io/nvidia/ai-dynamo/dynamo-frontend:1.6.1\n",
            "",
            "g.yaml:5:5: k8s.image: component 'http_ingress' has no image: give it 'image:' or "
            "pass --image",
        ),
        (
            "  - name: planner\n",
            "  - name: http-ingress\n",
            "g.yaml:33:11: k8s.component-name: 'http-ingress' and 'http_ingress' both become "
            "'http-ingress'",
        ),
        (
            "  - name: planner\n",
            "  - name: _planner\n",
            "g.yaml:33:11: k8s.component-name: '_planner' becomes '-planner', not a Kubernetes "
            "name",
        ),
        (
            "secret_env: [hf-token-secret, extra-env]",
            "secret_env: [hf-token-secret, extra_env]",
            "g.yaml:29:35: k8s.secret-name: 'extra_env' cannot name a Kubernetes Secret",
        ),
        (
            "      RETRIES: 3\n",
            "      DYN_SECRET_HF_TOKEN: x\n",
            "g.yaml:26:7: k8s.env-name: DYN_SECRET_HF_TOKEN is set by the renderer itself",
        ),
        (
            "      RETRIES: 3\n",
            "      DYN_DEPLOYMENT_CONFIG: x\n",
            "g.yaml:26:7: k8s.env-name: DYN_DEPLOYMENT_CONFIG is set by the renderer itself (from "
            "parameters)",
        ),
    ],
)
def test_what_kubernetes_cannot_take_is_reported_at_its_node(
    old: str, new: str, expected: str
) -> None:
    text = GRAPH.replace(old, new)
    assert text != GRAPH
    image = None if "k8s.image" in expected else "img:1"
    rendering = render_dgd(parse_graph(text, "g.yaml"), RenderOptions(image=image))
    assert rendering.manifest is None
    assert rendering.problems[0].format("g.yaml").startswith(expected)
    assert len(rendering.problems) == (3 if image is None else 1)


def test_an_invalid_graph_is_not_rendered() -> None:
    rendering = render_dgd(parse_graph(GRAPH.replace("replicas: 2", "instances: 2"), "g.yaml"))
    assert rendering.manifest is None
    assert [(p.line, p.column, p.rule) for p in rendering.problems] == [
        (11, 5, "schema.additionalProperties")
    ]


def test_rendering_is_deterministic() -> None:
    assert _render(image="i") == _render(image="i")


# -- the command ------------------------------------------------------------------------------


def test_render_to_stdout_and_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "shop.yaml"
    source.write_text(GRAPH, encoding="utf-8")
    code, out, err = run(capsys, "render", str(source), "--target", "k8s", "--image", "img:1")
    assert (code, err) == (0, "")
    assert out.splitlines()[:3] == [
        f"# Rendered by 'dynconform graph render' from {source}; edit the graph, not this.",
        "# Secret references read the keys DB_PASSWORD, HF_TOKEN of Secret shop-secrets:",
        "#   kubectl create secret generic shop-secrets --from-literal=DB_PASSWORD=... "
        "--from-literal=HF_TOKEN=...",
    ]
    assert yaml.safe_load(out) == _render(image="img:1")
    target = tmp_path / "dgd.yaml"
    argv = ["render", str(source), "--target", "k8s", "--image", "img:1", "-o", str(target)]
    code, out, err = run(capsys, *argv, "--api-version", "v1alpha1")
    assert (code, out) == (0, "")
    assert err == f"wrote {target}: DynamoGraphDeployment nvidia.com/v1alpha1, 3 components\n"
    assert yaml.safe_load(target.read_text(encoding="utf-8")) == _render(
        image="img:1", api_version="v1alpha1"
    )


def test_render_problems_go_to_stderr_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "shop.yaml"
    source.write_text(GRAPH, encoding="utf-8")
    target = tmp_path / "dgd.yaml"
    code, out, err = run(capsys, "render", str(source), "--target", "k8s", "-o", str(target))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"{source}:13:5: k8s.image: component 'prefill_worker' has no image: give it 'image:' or "
        "pass --image",
        f"{source}:33:5: k8s.image: component 'planner' has no image: give it 'image:' or pass "
        "--image",
        f"{source}: not rendered, 2 problems",
    ]
    assert not target.exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--image", "i"], "the following arguments are required: --target"),
        (["--target", "slurm"], "invalid choice: 'slurm'"),
        (["--target", "k8s", "--api-version", "v2"], "invalid choice: 'v2'"),
        (["--target", "k8s", "--secret-name", "Bad_Name"], "--secret-name 'Bad_Name' cannot"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    source = tmp_path / "shop.yaml"
    source.write_text(GRAPH, encoding="utf-8")
    try:
        code = main(["graph", "render", str(source), *argv])
    except SystemExit as exc:  # argparse
        code = int(str(exc.code))
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert needle in captured.err
    assert captured.err.count("\n") == 1


def test_secrets_of_the_environment_are_never_resolved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # ${{ secrets.X }} looks like CI templating: a careless renderer would substitute X from
    # the environment. The value must stay in the Kubernetes Secret.
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("DB_PASSWORD", SECRET)
    source = tmp_path / "shop.yaml"
    source.write_text(GRAPH, encoding="utf-8")
    for version in ("v1beta1", "v1alpha1"):
        code, out, err = run(
            capsys,
            "render",
            str(source),
            "--target",
            "k8s",
            "--image",
            "i",
            "--api-version",
            version,
        )
        assert code == 0
        assert SECRET not in out + err
        assert out.count("secretKeyRef:") == 3
    code, out, err = run(capsys, "validate", str(source), "--json")
    assert code == 0
    assert SECRET not in out + err


def test_the_corrected_draft_graphs_render() -> None:
    for name, graph in (
        ("graph-sdk-v2.yaml", "my-graph"),
        ("graph-sdk-v2-ir.yaml", "dynamo-graph"),
    ):
        text = (SAMPLES / name).read_text(encoding="utf-8")
        components = len(yaml.safe_load(text)["components"])
        for version in ("v1beta1", "v1alpha1"):
            manifest = _render(text, image="img:1", api_version=version)
            assert manifest["metadata"]["name"] == graph
            listed = manifest["spec"]["components" if version == "v1beta1" else "services"]
            assert len(listed) == components


def test_a_variable_named_like_a_generated_one_is_fine_when_nothing_generates_it() -> None:
    text = GRAPH.replace("      RETRIES: 3\n", "      DYN_SECRET_OTHER: x\n")
    env = _container(_render(text, image="i"), 1)["env"]
    assert {"name": "DYN_SECRET_OTHER", "value": "x"} in env


@pytest.mark.parametrize("image", ["bad image", "x:", "nvcr.io/a/b:tag with space"])
def test_an_image_that_is_no_reference_is_reported(image: str) -> None:
    text = GRAPH.replace(
        "    image: nvcr.io/nvidia/ai-dynamo/dynamo-frontend:1.6.1\n", f"    image: '{image}'\n"
    )
    rendering = render_dgd(parse_graph(text, "g.yaml"), RenderOptions(image="img:1"))
    assert rendering.manifest is None
    (problem,) = rendering.problems
    assert problem.format("g.yaml") == (
        f"g.yaml:6:12: k8s.image: component 'http_ingress': {image!r} is not an image reference "
        "([REGISTRY/]REPOSITORY[:TAG][@DIGEST])"
    )
    flag = render_dgd(parse_graph(GRAPH, "g.yaml"), RenderOptions(image=image))
    assert {p.rule for p in flag.problems} == {"k8s.image"}
