"""``dynconform graph validate``: every problem at the line and column of its node."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dynconform.cli import main
from dynconform.contracts import Validator
from dynconform.graph import Redactor, load_graph, parse_graph, validate_graph

ORIGINALS = Path(__file__).parents[1] / "fixtures" / "graphs"
FLAT = "schema.additionalProperties"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["graph", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def where(text: str, name: str = "g.yaml") -> list[tuple[int, int, str]]:
    return [(p.line, p.column, p.rule) for p in validate_graph(parse_graph(text, name))]


def _line_col(path: Path, reported: str) -> tuple[int, int]:
    match = re.match(re.escape(f"{path}:") + r"(\d+):(\d+): ", reported)
    assert match is not None, reported
    return int(match[1]), int(match[2])


def _nest_flags(lines: list[str], flagged: list[int]) -> None:
    """Move the flat engine flags reported at ``flagged`` (1-based) under run_config.options."""
    for number in sorted(flagged, reverse=True):
        lines[number - 1] = "  " + lines[number - 1]
        if number - 1 not in flagged:
            lines.insert(number - 1, "      options:\n")


# -- the drafts: typos first, with their positions; then what the typos hid -----------------


def test_sdk_v2_draft_typos_then_gpu_mismatch_then_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = ORIGINALS / "sdk-v2-graph.yaml"
    code, out, err = run(capsys, "validate", str(original))
    assert (code, err) == (1, "")
    reported = out.splitlines()[:-1]
    assert reported[:3] == [
        f"{original}:25:5: {FLAT}: unknown key 'arg' (did you mean 'args'?)",
        f"{original}:26:5: {FLAT}: unknown key 'instances' (did you mean 'replicas'?)",
        f"{original}:32:5: yaml.duplicate-key: duplicate key 'cmd' (first at line 31, column 5);"
        " only the last one is kept",
    ]
    flat = [_line_col(original, ln) for ln in reported[3:]]
    assert flat == [
        (n, 7) for n in (44, 45, *range(55, 60), *range(71, 77), 86, 87, 88, 98, 99)
    ] + [(n, 7) for n in range(110, 116)]
    assert all("(engine flags go under run_config.options)" in ln for ln in reported[3:])
    assert out.splitlines()[-1] == f"{original}: {len(reported)} problems"

    # Fix exactly what was reported, at the reported lines.
    lines = original.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[24].startswith("    arg:")
    assert lines[25].startswith("    instances:")
    lines[24] = lines[24].replace("arg:", "args:")
    lines[25] = lines[25].replace("instances:", "replicas:")
    _nest_flags(lines, [line for line, _ in flat])
    del lines[30]  # the first of the two cmd keys (line 31)
    fixed = tmp_path / "sdk-v2.yaml"
    fixed.write_text("".join(lines), encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(fixed))
    assert (code, out.splitlines()) == (
        1,
        [
            f"{fixed}:18:29: deployment.gpu-visible-devices: CUDA_VISIBLE_DEVICES '4,5' names 2 "
            "device(s) but resources.gpu asks for 1",
            f"{fixed}: 1 problem",
        ],
    )
    fixed.write_text("".join(lines).replace('"4,5"', '"4"'), encoding="utf-8")
    assert run(capsys, "validate", str(fixed)) == (0, f"{fixed}: valid (10 components)\n", "")


def test_sdk_v2_ir_draft_nested_parameters_then_undeclared_secret_then_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = ORIGINALS / "sdk-v2-ir-graph.yaml"
    code, out, _ = run(capsys, "validate", str(original), "--json")
    report = json.loads(out)
    assert (code, report["valid"], report["components"]) == (1, False, 5)
    found = [(p["line"], p["column"], p["rule"], p["pointer"]) for p in report["problems"]]
    assert found[0] == (23, 7, FLAT, "/components/1/run_config/parameters")
    assert [(line, col) for line, col, _, _ in found[1:]] == [
        (n, 7) for n in (*range(44, 50), 59, 60, *range(70, 76))
    ]
    assert {p["rule"] for p in report["problems"]} == {FLAT}

    lines = original.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[22].strip() == "parameters:"
    lines[22] = lines[22].replace("parameters:", "options:")
    _nest_flags(lines, [line for line, _, _, _ in found[1:]])
    fixed = tmp_path / "ir.yaml"
    fixed.write_text("".join(lines), encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(fixed))
    assert code == 1
    assert out.splitlines()[0] == (
        f"{fixed}:35:17: deployment.secrets-declared: secret 'HF_TOKEN' is used but not "
        "declared in secrets (declared: my_secret_name)"
    )
    fixed.write_text("".join(lines).replace("- my_secret_name", "- HF_TOKEN"), encoding="utf-8")
    assert run(capsys, "validate", str(fixed))[0] == 0


def test_ux_v2_alternative_1_is_valid_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    path = ORIGINALS / "ux-v2-deployment.yaml"
    assert run(capsys, "validate", str(path)) == (0, f"{path}: valid (2 components)\n", "")


def test_ux_v2_alternative_2_is_not_yaml_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = ORIGINALS / "ux-v2-config.yaml"
    code, out, err = run(capsys, "validate", str(path), "--json")
    assert (code, out) == (2, "")
    assert err == f"dynconform: error: {path}:15:17: mapping values are not allowed here\n"


# -- semantic rules at their nodes ------------------------------------------------------------

GRAPH = """\
version: "1.0"
name: demo
namespace: ns1
components:
  - name: frontend
    run_config: {input: http, output: dyn}
    dependency:
      backend: dynamo://v1/ns1/backend
    environment:
      DB_URI: "${{ secrets.DB_URI }}"
    secrets: [DB_URI]
  - name: backend
    resources:
      gpu: 2
      memory: 24Gi
    environment:
      CUDA_VISIBLE_DEVICES: "0,1"
"""


def test_the_base_graph_is_valid() -> None:
    assert where(GRAPH) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "dynamo://v1/ns1/backend",
            "dynamo://v1/ns1/backedn",
            (8, 16, "deployment.dependency-resolves", "(did you mean 'backend'?)"),
        ),
        (
            "dynamo://v1/ns1/backend",
            "dynamo://v1/ns2/backend",
            (8, 16, "deployment.dependency-resolves", "in namespace 'ns2'"),
        ),
        (
            "dynamo://v1/ns1/backend",
            "dyn://ns1.backend",
            (8, 16, "schema.pattern", "does not match"),
        ),
        (
            "secrets: [DB_URI]",
            "secrets: [DB_URL]",
            (10, 15, "deployment.secrets-declared", "secret 'DB_URI' is used but not declared"),
        ),
        ("memory: 24Gi", "memory: 24GB", (15, 15, "deployment.quantity-parses", "24GB")),
        ('"0,1"', '"0"', (17, 29, "deployment.gpu-visible-devices", "names 1 device(s)")),
        ("name: frontend", "name: backend", (12, 11, "deployment.unique-names", "/components/0")),
    ],
)
def test_rule_violations_point_at_their_node(
    old: str, new: str, expected: tuple[int, int, str, str]
) -> None:
    problems = validate_graph(parse_graph(GRAPH.replace(old, new, 1), "g.yaml"))
    assert [(p.line, p.column, p.rule) for p in problems] == [expected[:3]]
    assert expected[3] in problems[0].message


def test_broken_dependency_in_a_draft_fails_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ORIGINALS / "ux-v2-deployment.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    replicas: 5\n",
        "    replicas: 5\n    dependency:\n      worker: dynamo://v1/dynamo/vllm-worker\n",
    )
    path = tmp_path / "g.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    assert out.splitlines()[0] == (
        f"{path}:19:15: deployment.dependency-resolves: dynamo://v1/dynamo/vllm-worker names no "
        "component of this graph (did you mean 'vllm_worker'?)"
    )


def test_undeclared_secret_in_a_list_item_points_at_the_item() -> None:
    text = GRAPH.replace(
        "    run_config: {input: http, output: dyn}\n",
        "    args:\n      - --verbose\n      - --token=${{ secrets.API_TOKEN }}\n",
    )
    problems = validate_graph(parse_graph(text, "g.yaml"))
    assert [(p.line, p.column, p.rule, p.pointer) for p in problems] == [
        (8, 9, "deployment.secrets-declared", "/components/0/args/1")
    ]


# -- schema problems at their nodes -----------------------------------------------------------


def test_unknown_keys_are_reported_at_each_key_with_hints() -> None:
    text = GRAPH.replace(
        "    secrets: [DB_URI]\n", "    secrets: [DB_URI]\n    env: {}\n    gpus: 1\n"
    )
    problems = validate_graph(parse_graph(text, "g.yaml"))
    assert [(p.line, p.column, p.pointer, p.message) for p in problems] == [
        (12, 5, "/components/0/env", "unknown key 'env' (did you mean 'environment'?)"),
        (13, 5, "/components/0/gpus", "unknown key 'gpus'"),
    ]


def test_types_required_property_names_and_unique_items() -> None:
    text = (
        "version: 1.0\n"
        "name: demo\n"
        "components:\n"
        "  - name: a\n"
        "    replicas: two\n"
        "    environment:\n"
        "      1BAD: x\n"
        "    secrets: [A, B, A]\n"
        "  - image: x\n"
    )
    problems = validate_graph(parse_graph(text, "g.yaml"))
    assert [(p.line, p.column, p.rule, p.pointer) for p in problems] == [
        (5, 15, "schema.type", "/components/0/replicas"),
        (7, 7, "schema.propertyNames", "/components/0/environment/1BAD"),
        (8, 21, "schema.uniqueItems", "/components/0/secrets/2"),
        (9, 5, "schema.required", "/components/1"),
    ]
    assert problems[0].message == "expected integer, got a string"
    assert problems[3].message == "'name' is a required property"


def test_a_document_that_is_not_a_mapping_is_invalid_at_its_start() -> None:
    assert where("\n\n- a\n- b\n") == [(3, 1, "schema.type")]


def test_duplicate_keys_anywhere_are_reported_with_both_positions() -> None:
    text = GRAPH.replace("      gpu: 2\n", "      gpu: 2\n      gpu: 2\n").replace(
        "name: demo\n", "name: demo\nname: demo\n"
    )
    problems = validate_graph(parse_graph(text, "g.yaml"))
    assert [(p.line, p.column, p.rule, p.pointer, p.message) for p in problems] == [
        (
            3,
            1,
            "yaml.duplicate-key",
            "",
            "duplicate key 'name' (first at line 2, column 1); only the last one is kept",
        ),
        (
            16,
            7,
            "yaml.duplicate-key",
            "/components/1/resources",
            "duplicate key 'gpu' (first at line 15, column 7); only the last one is kept",
        ),
    ]


def test_merge_keys_are_not_duplicates_and_positions_follow_anchors() -> None:
    text = (
        "version: 1.0\n"
        "name: demo\n"
        "components:\n"
        "  - &base\n"
        "    name: a\n"
        "    resources: {cpu: 2 cores}\n"
        "  - <<: *base\n"
        "    name: b\n"
    )
    problems = validate_graph(parse_graph(text, "g.yaml"))
    assert [(p.line, p.column, p.pointer) for p in problems] == [
        (6, 22, "/components/0/resources/cpu"),
        (6, 22, "/components/1/resources/cpu"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "g.yaml: empty YAML document"),
        (b"# only a comment\n", "g.yaml: empty YAML document"),
        (
            b"a: 1\n---\nb: 2\n",
            "g.yaml:2:1: expected a single document in the stream; but found another document",
        ),
        (
            b"a: [1, 2\n",
            "g.yaml:2:1: while parsing a flow sequence; expected ',' or ']', but got "
            "'<stream end>'",
        ),
        (b"a: &x [*x]\n", "g.yaml:1:4: an alias refers to a node that contains it"),
        (b"name: \xff\n", "g.yaml: not UTF-8 text (byte 6)"),
    ],
)
def test_unreadable_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "g.yaml"
    path.write_bytes(content)
    code, out, err = run(capsys, "validate", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"dynconform: error: {tmp_path}/{message}")
    assert err.count("\n") == 1


def test_runaway_aliases_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\n", encoding="utf-8")
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2
    assert "more than 20,000 nodes" in err


def test_missing_file_and_directory_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "validate", str(tmp_path / "nope.yaml"))[0:2] == (2, "")
    code, _, err = run(capsys, "validate", str(tmp_path))
    assert (code, err) == (2, f"dynconform: error: {tmp_path}: is a directory\n")


def test_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import sys

    stdin = io.TextIOWrapper(io.BytesIO(GRAPH.replace('"0,1"', '"0"').encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, _ = run(capsys, "validate", "-")
    assert code == 1
    assert out.startswith("<stdin>:17:29: deployment.gpu-visible-devices: ")


def test_json_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH.replace("gpu: 2", 'gpu: "1.5"'), encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(path), "--json")
    assert code == 1
    assert json.loads(out) == {
        "file": str(path),
        "valid": False,
        "components": 2,
        "problems": [
            {
                "line": 14,
                "column": 12,
                "rule": "deployment.quantity-parses",
                "pointer": "/components/1/resources/gpu",
                "message": "gpu '1.5' is not a whole number of GPUs",
            }
        ],
    }


# -- secret values are never printed ----------------------------------------------------------

SECRET = "hf_live_9Zq3xV7pLw2Rk8Tn"


def test_a_literal_declared_secret_is_reported_without_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(
        GRAPH.replace('"${{ secrets.DB_URI }}"', f'"{SECRET}"'),
        encoding="utf-8",
    )
    for argv in (["validate", str(path)], ["validate", str(path), "--json"]):
        code, out, err = run(capsys, *argv)
        assert code == 1
        assert SECRET not in out + err
        assert "deployment.secret-literal" in out
    code, out, err = run(capsys, "render", str(path), "--target", "k8s", "--image", "i")
    assert (code, out) == (1, "")
    assert f"{path}:10:15: deployment.secret-literal: DB_URI is declared in secrets" in err
    assert SECRET not in err


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        (f"HF_TOKEN: [{SECRET}]", "expected string or number or boolean, got a list"),
        (f"DB_PASSWORD: {{v: {SECRET}}}", "got a mapping"),
    ],
)
def test_schema_messages_never_echo_credential_values(env: str, shown: str) -> None:
    text = GRAPH.replace('      DB_URI: "${{ secrets.DB_URI }}"\n', f"      {env}\n")
    problems = validate_graph(parse_graph(text, "g.yaml"))
    assert [p.rule for p in problems] == ["schema.type"]
    assert shown in problems[0].message
    assert SECRET not in repr(problems)


def test_a_credential_pasted_where_a_message_would_show_it_is_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GRAPH.replace("      memory: 24Gi\n", f"      memory: {SECRET}\n").replace(
        '      CUDA_VISIBLE_DEVICES: "0,1"\n',
        f'      CUDA_VISIBLE_DEVICES: "0,1"\n      NGC_API_KEY: "{SECRET}"\n',
    )
    path = tmp_path / "g.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "validate", str(path))
    assert code == 1
    assert out.splitlines()[0] == (
        f"{path}:15:15: deployment.quantity-parses: '***' is not a Kubernetes quantity "
        "(e.g. 500m, 2Gi, 1.5, 1e3)"
    )
    assert SECRET not in out + err


def test_redactor_masks_declared_and_credential_looking_values_only() -> None:
    graph = {
        "components": [
            {
                "name": "a",
                "secrets": ["DB_URI"],
                "environment": {
                    "DB_URI": "postgres://u:pw@db",
                    "OPENAI_API_KEY": "sk-abcdef",
                    "API_TOKEN": "${{ secrets.API_TOKEN }}",
                    "TOKENIZERS_PARALLELISM": "false",
                    "LOG_LEVEL": "debug",
                },
            }
        ]
    }
    redact = Redactor(graph)
    text = "postgres://u:pw@db sk-abcdef 'sk-abcdef' ${{ secrets.API_TOKEN }} false debug"
    assert redact(text) == "*** *** '***' ${{ secrets.API_TOKEN }} false debug"
    value = "it's\\n"  # a quote and a backslash: repr() escapes them
    escaped = Redactor({"components": [{"environment": {"DB_PASSWORD": value}}]})
    assert escaped(f"value {value!r} here") == 'value "***" here'
    assert not Redactor({"components": [{"name": "a", "environment": {"LOG": "x"}}]})
    assert not Redactor(["not", "a", "graph"])


def test_load_graph_keeps_the_given_name(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH, encoding="utf-8")
    doc = load_graph(str(path))
    assert doc.name == str(path)
    assert doc.position("/components/1/resources/memory").line == 15
    assert doc.position("/components/1/resources/nothing-here").line == 14


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("${{ secrets.DB_URI }}", True),
        ("postgres://app:${{ secrets.DB_URI }}@db", True),
        ("${{ secrets.OTHER }}", False),  # undeclared: secrets-declared reports it
        ("postgres://app:pw@db", False),
        (5432, False),
    ],
)
def test_secret_literal_rule_of_the_contract(value: object, ok: bool) -> None:
    graph = {
        "version": "1.0",
        "name": "g",
        "components": [
            {"name": "a", "secrets": ["DB_URI"], "environment": {"DB_URI": value, "X": "lit"}}
        ],
    }
    violations = Validator().validate("deployment.graph", graph).violations
    if ok:
        assert violations == []
    elif isinstance(value, str) and "secrets." in value:
        assert [v.rule for v in violations] == ["deployment.secrets-declared"]
    else:
        assert [(v.pointer, v.rule) for v in violations] == [
            ("/components/0/environment/DB_URI", "deployment.secret-literal")
        ]
        assert str(value) not in violations[0].message
